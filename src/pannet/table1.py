"""Table 1: baseline characteristics by group, before and after matching (published layout).

:func:`build_table1` returns one long DataFrame, written to ``results/tables/table1.parquet``,
from which the report renders HTML/DOCX/LaTeX/Markdown. Its schema (:data:`TABLE1_SCHEMA`):

- one row ``row_type="n"`` first (``variable="n"``, ``level=""``): the group sizes in the
  ``*_n`` columns, percentages NaN;
- then for every variable, in the configured order, one row ``row_type="level"`` per level
  in the published order.

Per-variable values (``p_value``, ``p_text``, ``test``, ``expected_min``,
``smd_overall_before``, ``smd_overall_after``) are repeated on each level row of the
variable; ``first_in_variable`` marks the row where a renderer prints them. SMDs are
absolute values x 100, as the paper prints them; the signed values are in
``results/matching/balance.parquet``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

# column -> (dtype, description): the contract with the report renderer
TABLE1_SCHEMA: dict[str, tuple[str, str]] = {
    "row": ("int64", "display order, 0-based"),
    "row_type": ("string", "'n' (group sizes) | 'level'"),
    "variable": ("string", "analysis column (cdm.TABLE1_LEVELS key); 'n' on the size row"),
    "label": ("string", "printed variable name"),
    "level": ("string", "printed level; '' on the size row"),
    "first_in_variable": (
        "bool",
        "first level row of its variable (print per-variable cells here)",
    ),
    "before_sg_n": ("int64", "SG patients with this level, before matching (size row: group n)"),
    "before_sg_pct": ("float64", "percent of SG before matching, unrounded"),
    "before_nonsg_n": ("int64", "non-SG patients with this level, before matching"),
    "before_nonsg_pct": ("float64", "percent of non-SG before matching"),
    "before_sg": ("string", "formatted 'n (pct)' with one decimal"),
    "before_nonsg": ("string", "formatted 'n (pct)'"),
    "p_value": ("float64", "test of the variable before matching (per variable)"),
    "p_text": ("string", "p as printed: 3 decimals, '<0.001'"),
    "test": ("string", "'chi2' (Pearson, no continuity correction) | 'fisher' (exact, r x c)"),
    "test_rule": ("string", "what chose the test: 'auto' | 'chi2' | 'fisher' | 'override'"),
    "expected_min": ("float64", "smallest expected count of the variable's table"),
    "before_smd": ("float64", "|SMD| x 100 of this level before matching"),
    "before_smd_overall": ("float64", "Yang-Dalton |SMD| x 100 of the variable (NaN for 2 levels)"),
    "before_smd_flag": ("bool", "|SMD| x 100 above tables.smd_flag before matching"),
    "after_sg_n": ("int64", "as before_*, in the matched cohort"),
    "after_sg_pct": ("float64", "percent of matched SG"),
    "after_nonsg_n": ("int64", "matched non-SG with this level"),
    "after_nonsg_pct": ("float64", "percent of matched non-SG"),
    "after_sg": ("string", "formatted 'n (pct)'"),
    "after_nonsg": ("string", "formatted 'n (pct)'"),
    "after_smd": ("float64", "|SMD| x 100 of this level after matching"),
    "after_smd_overall": ("float64", "Yang-Dalton |SMD| x 100 after matching (NaN for 2 levels)"),
    "after_smd_flag": ("bool", "|SMD| x 100 above tables.smd_flag after matching"),
}

LABELS: dict[str, str] = {
    "age_group": "Age, years",
    "sex": "Sex",
    "hormonal_function": "Hormonal function",
    "calendar_period": "Calendar period",
    "charlson_group": "Charlson comorbidity index",
    "primary_size_cm": "Primary tumour size, cm",
    "liver_metastases_count": "Number of liver metastases",
    "extra_abdominal_metastases": "Extra-abdominal metastases",
    "who_grade": "WHO grade",
}


def _fmt(n: int, pct: float) -> str:
    return f"{n} ({pct:.1f})"


def _counts(df: pd.DataFrame, var: str, levels: Sequence[str], treatment: str):
    x = df[var].astype("string").to_numpy()
    t = df[treatment].to_numpy().astype(bool)
    sg = np.array([int(((x == lv) & t).sum()) for lv in levels])
    non = np.array([int(((x == lv) & ~t).sum()) for lv in levels])
    return sg, non, int(t.sum()), int((~t).sum())


def _pct(k: np.ndarray, n: int) -> np.ndarray:
    return 100.0 * k / n if n else np.full(k.shape, np.nan)


def build_table1(
    before: pd.DataFrame,
    after: pd.DataFrame,
    variables: Sequence[str],
    treatment: str = "treated",
    levels: Mapping[str, Sequence[str]] | None = None,
    test_rule: str = "auto",
    expected_below: float = 5.0,
    test_override: Mapping[str, str] | None = None,
    smd_flag: float = 10.0,
) -> pd.DataFrame:
    """Table 1 in the published layout (see the module docstring for the schema).

    Parameters
    ----------
    before, after : DataFrame
        The analysis dataset and the matched cohort (``variables`` and ``treatment``).
    variables : sequence of str
        Categorical variables in display order.
    levels : mapping, optional
        Ordered levels (default :data:`pannet.cdm.TABLE1_LEVELS`); every value must be one.
    test_rule : {"auto", "chi2", "fisher"}
        ``auto``: chi-square, Fisher when an expected count < ``expected_below``.
    test_override : mapping, optional
        Variable -> "chi2" | "fisher", overriding the rule (recorded as ``override``).
    smd_flag : float
        Threshold for the ``*_smd_flag`` columns (|SMD| x 100).
    """
    from pannet.balance import smd, smd_overall
    from pannet.cdm import TABLE1_LEVELS
    from pannet.contingency import compare_groups, format_p

    levels = {**TABLE1_LEVELS, **dict(levels or {})}
    override = dict(test_override or {})
    rows: list[dict] = []
    nb1 = int(before[treatment].astype(bool).sum())
    nb0 = len(before) - nb1
    na1 = int(after[treatment].astype(bool).sum())
    na0 = len(after) - na1
    rows.append(
        {
            "row_type": "n",
            "variable": "n",
            "label": "Patients, n",
            "level": "",
            "first_in_variable": True,
            "before_sg_n": nb1,
            "before_nonsg_n": nb0,
            "before_sg": str(nb1),
            "before_nonsg": str(nb0),
            "after_sg_n": na1,
            "after_nonsg_n": na0,
            "after_sg": str(na1),
            "after_nonsg": str(na0),
        }
    )
    tb = before[treatment].to_numpy().astype(bool)
    ta = after[treatment].to_numpy().astype(bool)
    for var in variables:
        if var not in before.columns or var not in after.columns:
            raise KeyError(f"Table 1 variable '{var}' is not a column of the data (rule: table1)")
        lv = list(levels.get(var) or sorted(before[var].astype("string").dropna().unique()))
        unknown = sorted(set(before[var].astype("string").dropna()) - set(lv))
        if unknown:
            raise ValueError(
                f"Table 1 variable '{var}' has values {unknown} outside its levels {lv}"
            )
        b1, b0, _, _ = _counts(before, var, lv, treatment)
        a1, a0, _, _ = _counts(after, var, lv, treatment)
        if var in override:
            res = compare_groups(np.c_[b1, b0], rule=override[var], expected_below=expected_below)
            rule_used = "override"
        else:
            res = compare_groups(np.c_[b1, b0], rule=test_rule, expected_below=expected_below)
            rule_used = test_rule
        xb = before[var].astype("string").to_numpy()
        xa = after[var].astype("string").to_numpy()
        multi = len(lv) > 2
        ov_b = 100 * smd_overall(xb, tb, lv) if multi else np.nan
        ov_a = 100 * smd_overall(xa, ta, lv) if multi and len(after) else np.nan
        pb1, pb0, pa1, pa0 = _pct(b1, nb1), _pct(b0, nb0), _pct(a1, na1), _pct(a0, na0)
        for i, level in enumerate(lv):
            sb = abs(100 * smd((xb == level).astype(float), tb, binary=True))
            sa = (
                abs(100 * smd((xa == level).astype(float), ta, binary=True))
                if len(after)
                else np.nan
            )
            rows.append(
                {
                    "row_type": "level",
                    "variable": var,
                    "label": LABELS.get(var, var),
                    "level": level,
                    "first_in_variable": i == 0,
                    "before_sg_n": int(b1[i]),
                    "before_sg_pct": float(pb1[i]),
                    "before_nonsg_n": int(b0[i]),
                    "before_nonsg_pct": float(pb0[i]),
                    "before_sg": _fmt(b1[i], pb1[i]),
                    "before_nonsg": _fmt(b0[i], pb0[i]),
                    "p_value": res["p"],
                    "p_text": format_p(res["p"]),
                    "test": res["test"],
                    "test_rule": rule_used,
                    "expected_min": res["expected_min"],
                    "before_smd": sb,
                    "before_smd_overall": ov_b,
                    "before_smd_flag": bool(sb > smd_flag),
                    "after_sg_n": int(a1[i]),
                    "after_sg_pct": float(pa1[i]),
                    "after_nonsg_n": int(a0[i]),
                    "after_nonsg_pct": float(pa0[i]),
                    "after_sg": _fmt(a1[i], pa1[i]),
                    "after_nonsg": _fmt(a0[i], pa0[i]),
                    "after_smd": sa,
                    "after_smd_overall": ov_a,
                    "after_smd_flag": bool(sa > smd_flag),
                }
            )
    out = pd.DataFrame(rows)
    out.insert(0, "row", np.arange(len(out), dtype=np.int64))
    for col, (dtype, _) in TABLE1_SCHEMA.items():
        if col not in out.columns:
            out[col] = np.nan
        if dtype == "bool":
            out[col] = out[col].map(lambda v: v is True or v is np.True_).astype(bool)
        elif dtype == "string":
            out[col] = out[col].astype("string").fillna("")
        else:
            out[col] = out[col].astype(dtype)
    return out[list(TABLE1_SCHEMA)]
