"""Audit of the publication from its own printed counts.

Every printed p-value is recomputed from the printed counts under each test a reader
could have meant (Pearson chi-square without and with Yates' correction, the likelihood
ratio G-test, Fisher's exact test including r x c tables; chi-square and Fisher are
:mod:`pannet.contingency`'s, as Table 1 and Table 2 use them), and every printed
standardized mean difference under each formula in use. A printed value "reproduces"
when the test or formula the paper names gives it at the printed precision; when it
does not, the audit says which variant does, or whether the value is a duplicate of a
value printed in another row, or that nothing reproduces it. The audit is told nothing
about which values are wrong: it finds them from the numbers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from pannet.contingency import format_p

# Test variants tried for every printed p-value (name -> label in the explanation).
P_VARIANTS: dict[str, str] = {
    "chi2": "Pearson chi-square",
    "chi2_yates": "Pearson chi-square with Yates' correction",
    "g_test": "likelihood-ratio G-test",
    "fisher": "Fisher's exact test",
}
# What the paper's own abbreviations name.
PRINTED_TEST = {"chi2": "chi2", "fisher": "fisher"}

# SMD formulas tried for every printed SMD (name -> label). Values are x 100, unsigned.
SMD_VARIANTS: dict[str, str] = {
    "pooled_sd": "per-level pooled SD, sqrt((p1(1-p1) + p0(1-p0)) / 2)",
    "pooled_sd_n": "per-level pooled sample SD weighted by n - 1",
    "treated_sd": "per-level SD of the surgery group",
    "control_sd": "per-level SD of the control group",
    "cohen_h": "Cohen's h (arcsine difference)",
    "pct_points": "difference in percentage points",
    "yang_dalton": "Yang & Dalton overall multi-level SMD",
}

# A p-value printed as 0.405 stands for [0.4045, 0.4055): three decimals, the journal's.
P_DECIMALS = 3
SMD_HALF_UNIT = 0.05  # SMDs are printed x 100 with one decimal


def read_published(path) -> dict:
    """The project's copy of the publication's figures (``study.published``, YAML).

    Raises
    ------
    ValueError
        When the file is not a mapping with the ``table1`` block both the audit and the
        replication check read.
    """
    import yaml

    with open(path, encoding="utf-8") as fh:
        published = yaml.safe_load(fh)
    if not isinstance(published, dict) or "table1" not in published:
        raise ValueError(f"{path}: not a publication file (no 'table1' block)")
    return published


# ---------------------------------------------------------------------------
# Tests
def p_value_variants(table) -> dict[str, float]:
    """Every test variant's p-value for one contingency table (groups x levels or transposed).

    Pearson chi-square and Fisher's exact test (r x c) are the ones Table 1 and Table 2
    use (:func:`pannet.contingency.chi2_test`, :func:`pannet.contingency.fisher_test`), so
    the audit and the pipeline cannot disagree on them. Yates' correction applies to 2 x 2
    tables only; for larger tables that variant is the uncorrected chi-square (as R
    ``chisq.test`` does). The G-test is the likelihood-ratio chi-square.
    """
    from scipy.stats import chi2_contingency

    from pannet.contingency import ContingencyError, chi2_test, fisher_test

    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    try:
        fisher = float(fisher_test(t)["p"])
    except ContingencyError:
        # too many tables to enumerate (e.g. a 100k-patient cohort): the exact p is out of
        # reach, and there the chi-square approximation is accurate anyway
        fisher = float("nan")
    return {
        "chi2": float(chi2_test(t)["p"]),
        "chi2_yates": float(chi2_contingency(t, correction=t.shape == (2, 2))[1]),
        "g_test": float(chi2_contingency(t, correction=False, lambda_="log-likelihood")[1]),
        "fisher": fisher,
    }


def min_expected(table) -> float:
    """Smallest expected cell count under independence."""
    t = np.asarray(table, dtype=float)
    e = np.outer(t.sum(axis=1), t.sum(axis=0)) / t.sum()
    return float(e.min())


# ---------------------------------------------------------------------------
# SMDs
def smd_variants(counts, n) -> dict[str, list[float]]:
    """Every SMD formula per level, x 100 and unsigned.

    Parameters
    ----------
    counts : array_like, shape (levels, 2)
        [SG, non-SG] count of each level.
    n : (int, int)
        Group sizes [SG, non-SG].
    """
    c = np.asarray(counts, dtype=float)
    n1, n0 = float(n[0]), float(n[1])
    p1, p0 = c[:, 0] / n1, c[:, 1] / n0
    v1, v0 = p1 * (1 - p1), p0 * (1 - p0)
    d = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        s1, s0 = v1 * n1 / (n1 - 1), v0 * n0 / (n0 - 1)
        out = {
            "pooled_sd": d / np.sqrt((v1 + v0) / 2),
            "pooled_sd_n": d / np.sqrt(((n1 - 1) * s1 + (n0 - 1) * s0) / (n1 + n0 - 2)),
            "treated_sd": d / np.sqrt(v1),
            "control_sd": d / np.sqrt(v0),
            "cohen_h": 2 * np.arcsin(np.sqrt(p1)) - 2 * np.arcsin(np.sqrt(p0)),
            "pct_points": d,
        }
    out = {k: [float(abs(x) * 100) if np.isfinite(x) else 0.0 for x in v] for k, v in out.items()}
    out["yang_dalton"] = [yang_dalton_smd(p1, p0) * 100] * len(p1)
    return out


def yang_dalton_smd(p1, p0) -> float:
    """Overall SMD of a categorical variable (Yang & Dalton 2012), unsigned."""
    p1, p0 = np.asarray(p1, float)[1:], np.asarray(p0, float)[1:]  # first level = reference
    if p1.size == 0:
        return 0.0
    d = p1 - p0
    s = (np.diag(p1) - np.outer(p1, p1) + np.diag(p0) - np.outer(p0, p0)) / 2
    try:
        val = float(d @ np.linalg.pinv(s) @ d)
    except np.linalg.LinAlgError:
        return float("nan")
    return math.sqrt(max(val, 0.0))


# ---------------------------------------------------------------------------
# Matching printed values
def parse_printed_p(printed) -> tuple[str, float]:
    """'<0.001' -> ('<', 0.001); 0.405 -> ('=', 0.405)."""
    if isinstance(printed, str):
        s = printed.strip()
        if s.startswith("<"):
            return "<", float(s[1:])
        return "=", float(s)
    return "=", float(printed)


def p_reproduces(printed, computed: float, decimals: int = P_DECIMALS) -> bool:
    """Does ``computed``, printed at the journal's precision, read as ``printed``?"""
    op, val = parse_printed_p(printed)
    if op == "<":
        return computed < val
    return round(computed, decimals) == round(val, decimals) or abs(computed - val) <= (
        0.5 * 10**-decimals + 1e-12
    )


def _p_row(section, item, table, printed, printed_test, same_table_printed) -> dict[str, Any]:
    variants = p_value_variants(table)
    named = PRINTED_TEST.get(printed_test, printed_test)
    as_printed = variants[named]
    reproduces = p_reproduces(printed, as_printed)
    matching = [k for k, v in variants.items() if p_reproduces(printed, v)]
    min_e = min_expected(table)
    label = P_VARIANTS[named]
    if reproduces:
        verdict = "reproduces"
        explanation = f"{label} on the printed counts gives {format_p(as_printed)}"
    elif matching:
        verdict = "reproduced by another test"
        other = matching[0]
        explanation = (
            f"printed as {label}, which gives {format_p(as_printed)}; "
            f"equals {P_VARIANTS[other]} {format_p(variants[other])}"
        )
    else:
        verdict = "not reproduced"
        dup = [k for k, v in same_table_printed.items() if k != item and str(v) == str(printed)]
        explanation = (
            f"no test variant gives {printed}; {label} on the printed counts gives "
            f"{format_p(as_printed)}"
        )
        if dup:
            explanation += (
                f"; the same value is printed on the row {', '.join(dup)} (likely copied)"
            )
    if named == "chi2" and min_e < 5:
        explanation += (
            f" (smallest expected count {min_e:.1f} < 5: the stated rule calls for Fisher)"
        )
    return {
        "section": section,
        "item": item,
        "level": "",
        "statistic": "p_value",
        "printed": str(printed),
        "printed_method": named,
        "computed_as_printed": as_printed,
        "reproduces": bool(reproduces),
        "verdict": verdict,
        "explanation": explanation,
        "matching_methods": ",".join(matching),
        "variants": json.dumps({k: round(v, 6) for k, v in variants.items()}, sort_keys=True),
    }


def _smd_rows(var: str, spec: dict, phase: str, n) -> list[dict[str, Any]]:
    printed = spec.get(f"smd_{phase}_printed")
    if printed is None:
        return []
    counts = spec[phase]
    variants = smd_variants(counts, n)
    levels = spec["levels"]
    binary = len(levels) == 2
    rows = []
    for i, (level, pr) in enumerate(zip(levels, printed, strict=True)):
        vals = {k: v[i] for k, v in variants.items()}
        as_printed = vals["pooled_sd"]
        matching = [k for k, v in vals.items() if abs(v - float(pr)) <= SMD_HALF_UNIT + 1e-9]
        reproduces = "pooled_sd" in matching
        if reproduces:
            verdict = "reproduces"
            explanation = f"per-level pooled-SD SMD gives {as_printed:.1f}"
        elif matching:
            verdict = "reproduced by another formula"
            explanation = (
                f"per-level pooled-SD SMD gives {as_printed:.1f}; "
                f"equals {SMD_VARIANTS[matching[0]]} {vals[matching[0]]:.1f}"
            )
        else:
            verdict = "not reproduced"
            nearest = min(vals, key=lambda k: abs(vals[k] - float(pr)))
            explanation = (
                f"no formula gives {pr}; per-level pooled-SD SMD gives {as_printed:.1f} "
                f"(nearest: {SMD_VARIANTS[nearest]} {vals[nearest]:.1f})"
            )
        if binary and abs(float(printed[0]) - float(printed[1])) > 2 * SMD_HALF_UNIT:
            explanation += (
                f"; a two-level variable has one |SMD| for both levels under every per-level "
                f"formula, but {printed[0]} and {printed[1]} are printed"
            )
        rows.append(
            {
                "section": f"table1_{phase}_matching",
                "item": var,
                "level": str(level),
                "statistic": "smd",
                "printed": str(pr),
                "printed_method": "pooled_sd",
                "computed_as_printed": as_printed,
                "reproduces": bool(reproduces),
                "verdict": verdict,
                "explanation": explanation,
                "matching_methods": ",".join(matching),
                "variants": json.dumps({k: round(v, 4) for k, v in vals.items()}, sort_keys=True),
            }
        )
    return rows


def _count_rows(var: str, spec: dict, phase: str, n) -> list[dict[str, Any]]:
    """Do the printed level counts add up to the printed group sizes?"""
    c = np.asarray(spec[phase], dtype=int)
    sums = c.sum(axis=0).tolist()
    ok = sums == list(n)
    return [
        {
            "section": f"table1_{phase}_matching",
            "item": var,
            "level": "",
            "statistic": "count_total",
            "printed": f"{list(n)}",
            "printed_method": "sum of level counts",
            "computed_as_printed": float(sum(sums)),
            "reproduces": ok,
            "verdict": "reproduces" if ok else "not reproduced",
            "explanation": (
                f"level counts sum to {sums}"
                + ("" if ok else f", not the printed group sizes {list(n)}")
            ),
            "matching_methods": "",
            "variants": "{}",
        }
    ]


def _pct_rows(surgery: dict, n_sg: int) -> list[dict[str, Any]]:
    rows = []
    for key, v in surgery.items():
        if not (isinstance(v, dict) and "n" in v and "pct" in v):
            continue
        pct = 100 * v["n"] / n_sg
        ok = abs(round(pct, 1) - float(v["pct"])) < 1e-9 or abs(pct - float(v["pct"])) <= 0.05
        rows.append(
            {
                "section": "surgery",
                "item": key,
                "level": "",
                "statistic": "percent",
                "printed": str(v["pct"]),
                "printed_method": f"n / {n_sg}",
                "computed_as_printed": pct,
                "reproduces": bool(ok),
                "verdict": "reproduces" if ok else "not reproduced",
                "explanation": f"{v['n']} / {n_sg} = {pct:.1f} %",
                "matching_methods": "",
                "variants": "{}",
            }
        )
    return rows


def _ci_rows(section: str, block: dict) -> list[dict[str, Any]]:
    """A symmetric interval (plain Greenwood, as the paper says) has its estimate at the centre."""
    rows = []
    for phase, groups in block.items():
        if not isinstance(groups, dict):
            continue
        for grp, vals in groups.items():
            if not isinstance(vals, dict):
                continue
            for key, est in vals.items():
                if not key.startswith("surv_"):
                    continue
                ci = vals.get("ci_" + key.removeprefix("surv_"))
                if not ci:
                    continue
                lo, hi = float(ci[0]), float(ci[1])
                centre = (lo + hi) / 2
                ok = abs(centre - float(est)) <= 0.05 + 1e-9  # one printed decimal each side
                rows.append(
                    {
                        "section": f"{section}_{phase}",
                        "item": f"{grp} {key}",
                        "level": "",
                        "statistic": "ci_symmetry",
                        "printed": f"{est} ({lo}-{hi})",
                        "printed_method": "plain (symmetric) interval",
                        "computed_as_printed": centre,
                        "reproduces": bool(ok),
                        "verdict": "reproduces" if ok else "not reproduced",
                        "explanation": (
                            f"interval centre {centre:.2f} vs estimate {est}"
                            + (
                                ""
                                if ok
                                else f": asymmetric by {centre - float(est):+.2f}, not a plain interval"
                            )
                        ),
                        "matching_methods": "",
                        "variants": "{}",
                    }
                )
    return rows


AUDIT_COLUMNS = (
    "section",
    "item",
    "level",
    "statistic",
    "printed",
    "printed_method",
    "computed_as_printed",
    "reproduces",
    "verdict",
    "explanation",
    "matching_methods",
    "variants",
)


def audit_publication(published: dict):
    """Recompute every printed p-value, SMD, total, percentage and CI centre.

    Parameters
    ----------
    published : dict
        The parsed ``kjaer2022.yaml`` (its ``table1``, ``table2``, ``surgery``,
        ``overall_survival`` and ``progression_free_survival`` blocks).

    Returns
    -------
    pandas.DataFrame
        One row per printed value, columns ``AUDIT_COLUMNS``.
    """
    import pandas as pd

    rows: list[dict[str, Any]] = []
    t1 = published.get("table1") or {}
    variables = t1.get("variables") or {}
    n_before = t1.get("n", {}).get("before")
    n_after = t1.get("n", {}).get("after")
    printed_t1 = {k: v.get("p_before") for k, v in variables.items() if "p_before" in v}
    for var, spec in variables.items():
        if "p_before" in spec:
            table = np.asarray(spec["before"], dtype=int).T  # groups x levels
            rows.append(
                _p_row(
                    "table1_before_matching",
                    var,
                    table,
                    spec["p_before"],
                    spec.get("test", "chi2"),
                    printed_t1,
                )
            )
        for phase, n in (("before", n_before), ("after", n_after)):
            if n is not None and phase in spec:
                rows.extend(_count_rows(var, spec, phase, n))
                rows.extend(_smd_rows(var, spec, phase, n))
    t2 = published.get("table2") or {}
    n2 = n_after or [50, 50]
    printed_t2 = {k: v.get("p") for k, v in t2.items()}
    for item, spec in t2.items():
        a, b = spec["counts"]
        table = np.array([[a, n2[0] - a], [b, n2[1] - b]])
        rows.append(_p_row("table2", item, table, spec["p"], spec.get("test", "chi2"), printed_t2))
    surgery = published.get("surgery") or {}
    sg = (published.get("study") or {}).get("flow", {}).get("SG") or (n_before or [None])[0]
    if sg:
        rows.extend(_pct_rows(surgery, int(sg)))
    for section in ("overall_survival", "progression_free_survival"):
        if section in published:
            rows.extend(_ci_rows(section, published[section]))
    return pd.DataFrame(rows, columns=list(AUDIT_COLUMNS))
