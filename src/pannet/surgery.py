"""Surgical outcomes of the surgery group (SG), and 90-day mortality between matched groups.

Rows of one long table (``results/tables/surgery.parquet``): resection types, Clavien-
Dindo grade >= 2 and >= 3, and 90-day mortality in SG (all eligible patients), then
90-day mortality per matched group with the Table 1 test rule.
"""

from __future__ import annotations

import pandas as pd

from pannet.cdm import RESECTION_TYPES
from pannet.contingency import compare_groups, format_p


def _require(df: pd.DataFrame, cols, source: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: column(s) {missing} missing (rule: surgical_outcomes)")


def _row(measure, level, population, group, n, total, **extra) -> dict:
    return {
        "measure": measure,
        "level": level,
        "population": population,
        "group": group,
        "n": int(n),
        "total": int(total),
        "pct": 100 * n / total if total else float("nan"),
        "test": extra.get("test", ""),
        "p": extra.get("p", float("nan")),
        "p_text": format_p(extra["p"]) if "p" in extra else "",
    }


def surgical_outcomes(
    analysis: pd.DataFrame,
    matched: pd.DataFrame,
    rule: str = "auto",
    expected_below: float = 5.0,
) -> pd.DataFrame:
    """Resection types, Clavien-Dindo >= 2 / >= 3 and 90-day mortality in SG; 90-day
    mortality compared between the matched groups.

    Clavien-Dindo percentages use every SG patient as denominator (as published, 19 of
    65); patients with an unknown grade are counted in a ``clavien_dindo`` / ``unknown`` row.
    """
    _require(analysis, ["group", "resection_type", "clavien_dindo", "death_90d"], "analysis cohort")
    _require(matched, ["group", "death_90d"], "matched cohort")
    sg = analysis[analysis["group"] == "SG"]
    n = len(sg)
    rows = []
    types = sg["resection_type"].astype("string")
    unknown_types = sorted(set(types.dropna()) - set(RESECTION_TYPES))
    if unknown_types:
        raise ValueError(
            f"analysis cohort: unknown resection_type {unknown_types} (rule: surgical_outcomes)"
        )
    for rt in RESECTION_TYPES:
        rows.append(_row("resection_type", rt, "all", "SG", (types == rt).sum(), n))
    if types.isna().any():
        rows.append(_row("resection_type", "unknown", "all", "SG", types.isna().sum(), n))
    cd = pd.to_numeric(sg["clavien_dindo"], errors="coerce")
    rows.append(_row("clavien_dindo", ">=2", "all", "SG", (cd >= 2).sum(), n))
    rows.append(_row("clavien_dindo", ">=3", "all", "SG", (cd >= 3).sum(), n))
    if cd.isna().any():
        rows.append(_row("clavien_dindo", "unknown", "all", "SG", cd.isna().sum(), n))
    rows.append(_row("mortality_90d", "death", "all", "SG", sg["death_90d"].sum(), n))
    counts = {
        g: int(matched.loc[matched["group"] == g, "death_90d"].sum()) for g in ("SG", "non-SG")
    }
    totals = {g: int((matched["group"] == g).sum()) for g in ("SG", "non-SG")}
    table = [[counts[g] for g in counts], [totals[g] - counts[g] for g in counts]]
    res = compare_groups(table, rule=rule, expected_below=expected_below)
    for g in ("SG", "non-SG"):
        rows.append(
            _row(
                "mortality_90d",
                "death",
                "matched",
                g,
                counts[g],
                totals[g],
                test=res["test"],
                p=res["p"],
            )
        )
    out = pd.DataFrame(rows)
    out["p"] = out["p"].astype(float)
    return out
