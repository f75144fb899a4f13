"""The sensitivity population: the matched cohort without liver-directed therapy.

The publication repeats the survival comparison after excluding every patient treated
with liver resection or thermal hepatic ablation (more SG patients had them, and a
longer life gives more occasions for them). Two variants:

- ``exclusion`` (default, as published): the matched cohort minus those patients;
  pairs whose partner was excluded are kept as singletons (``pair_complete`` = False)
  so the Cox robust SE still clusters on ``pair_id``.
- ``rematch``: exclude them from the whole analysis cohort, then refit the propensity
  model and match again with :mod:`pannet.matching` and the ``matching`` config.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

LIVER_DIRECTED = ("liver_resection", "thermal_hepatic_ablation")


class SensitivityError(ValueError):
    """The cohort lacks what the exclusion needs."""


def liver_directed(df: pd.DataFrame, source: str = "cohort") -> np.ndarray:
    """1 where a patient had liver resection or thermal ablation.

    Uses ``liver_directed_therapy`` and the two Table 2 indicators, whichever exist,
    and insists they agree (a disagreement means the cohort step is inconsistent).
    """
    parts = [c for c in LIVER_DIRECTED if c in df.columns]
    have_flag = "liver_directed_therapy" in df.columns
    if not parts and not have_flag:
        raise SensitivityError(
            f"{source}: needs column 'liver_directed_therapy' or {list(LIVER_DIRECTED)} "
            "(rule: sensitivity_exclusion)"
        )
    for c in [*parts, *(["liver_directed_therapy"] if have_flag else [])]:
        if df[c].isna().any():
            keys = df.loc[df[c].isna(), "patient_key"].head(5).tolist()
            raise SensitivityError(f"{source}: column {c!r} is missing for patients {keys}")
    from_parts = (df[parts].to_numpy(int).max(axis=1) > 0) if parts else None
    flag = df["liver_directed_therapy"].to_numpy(int) > 0 if have_flag else None
    if from_parts is not None and flag is not None and (from_parts != flag).any():
        keys = df.loc[from_parts != flag, "patient_key"].head(5).tolist()
        raise SensitivityError(
            f"{source}: 'liver_directed_therapy' disagrees with {parts} for patients {keys} "
            "(rule: sensitivity_exclusion)"
        )
    return (flag if flag is not None else from_parts).astype(int)


def exclude_liver_directed(matched: pd.DataFrame) -> pd.DataFrame:
    """The matched rows without liver-directed therapy; ``pair_complete`` marks pairs
    whose members all remain."""
    if "pair_id" not in matched.columns:
        raise SensitivityError(
            "matched cohort has no 'pair_id' column (rule: sensitivity_exclusion)"
        )
    keep = liver_directed(matched, "matched cohort") == 0
    out = matched.loc[keep].copy()
    size_before = matched.groupby("pair_id")["pair_id"].transform("size")[keep]
    size_after = out.groupby("pair_id")["pair_id"].transform("size")
    out["pair_complete"] = size_before.to_numpy() == size_after.to_numpy()
    out["sensitivity_variant"] = "exclusion"
    return out.reset_index(drop=True)


def rematch_without_liver_directed(
    analysis: pd.DataFrame, matching: Mapping, random_state=None
) -> pd.DataFrame:
    """Exclude liver-directed therapy from the whole cohort, then propensity-match again
    with the ``matching`` config section (covariates, distance, caliper, order, ...)."""
    from pannet.matching import run_matching, run_propensity

    keep = liver_directed(analysis, "analysis cohort") == 0
    cohort = analysis.loc[keep].reset_index(drop=True)
    _, scores = run_propensity(
        cohort, list(matching["covariates"]), distance=matching.get("distance", "logit")
    )
    _, matched = run_matching(
        cohort,
        scores,
        caliper=matching.get("caliper", 0.2),
        std_caliper=matching.get("std_caliper", True),
        order=matching.get("order", "largest"),
        ratio=matching.get("ratio", 1),
        replace=matching.get("replace", False),
        random_state=random_state,
    )
    matched["pair_complete"] = True
    matched["sensitivity_variant"] = "rematch"
    return matched


def sensitivity_cohort(
    matched: pd.DataFrame,
    analysis: pd.DataFrame | None = None,
    *,
    rematch: bool = False,
    matching: Mapping | None = None,
    seed: int | None = None,
) -> pd.DataFrame:
    """The sensitivity population (see module docstring for the two variants)."""
    if not rematch:
        return exclude_liver_directed(matched)
    if analysis is None or matching is None:
        raise SensitivityError("re-matching needs the analysis cohort and the matching config")
    # the matcher derives its stream from SeedSequence(seed) itself (order = "random")
    return rematch_without_liver_directed(analysis, matching, random_state=seed)
