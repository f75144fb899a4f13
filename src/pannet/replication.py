"""The replication check: every published figure beside the one the pipeline computed.

Counts, percentages and SMDs are recomputed from the pipeline's own cohort artefacts
(``analysis.parquet``, ``matched.parquet``); survival figures are read from the survival
stage's summary and test tables. Each row states the published value, the computed
value, their difference, the tolerance that applies and whether the difference is within
it. On the synthetic demo data this checks the pipeline and the data generator, not the
study: the generator was calibrated to the published figures.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

DEMO_NOTE = (
    "Synthetic demo data: agreement checks the pipeline and the data generator "
    "(calibrated to the publication), not the study's findings."
)
DEFAULT_TOLERANCE = {
    "count_rel": 0.15,
    "count_abs": 3,
    "percent_abs": 10.0,
    "years_abs": 1.5,
    "p_abs": 0.25,
    "smd_abs": 15.0,
}
COLUMNS = (
    "section",
    "item",
    "group",
    "published",
    "computed",
    "difference",
    "tolerance",
    "kind",
    "within",
    "source",
    "note",
)


def _num(x) -> float:
    if x is None:
        return math.nan
    if isinstance(x, str):
        s = x.strip().lstrip("<")
        try:
            return float(s)
        except ValueError:
            return math.nan
    return float(x)


def _tolerance(kind: str, published: float, tol: Mapping[str, float]) -> float:
    if kind == "count":
        return max(float(tol["count_abs"]), float(tol["count_rel"]) * abs(published))
    return float(tol[f"{kind}_abs"])


class _Rows:
    def __init__(self, tol):
        self.rows: list[dict[str, Any]] = []
        self.tol = {**DEFAULT_TOLERANCE, **(tol or {})}

    def add(self, section, item, group, published, computed, kind, source, note=""):
        pub = _num(published)
        comp = _num(computed)
        tol = _tolerance(kind, pub, self.tol)
        if (
            isinstance(published, str)
            and published.strip().startswith("<")
            and not math.isnan(comp)
        ):
            # published as a bound ("<0.001"): within when the computed value is under it
            diff = 0.0 if comp < pub else comp - pub
        else:
            diff = comp - pub
        within = None if math.isnan(comp) or math.isnan(pub) else bool(abs(diff) <= tol + 1e-12)
        if math.isnan(comp) and not note:
            note = "not computed: artefact or value not available"
        self.rows.append(
            {
                "section": section,
                "item": item,
                "group": group,
                "published": pub,
                "computed": comp,
                "difference": diff,
                "tolerance": tol,
                "kind": kind,
                "within": within,
                "source": source,
                "note": note,
            }
        )


GROUPS = ("SG", "non-SG")


TOO_LARGE_FOR_EXACT = "not computed: the table is too large for Fisher's exact enumeration"


def _p(table, test: str) -> tuple[float, str]:
    """(p, note) of the named test ("chi2" | "fisher") on a counts table.

    The tests are :mod:`pannet.contingency`'s, as Table 1 and Table 2 use; an empty level
    (all-zero row or column) is dropped there, as R does. p is NaN when a count is NaN, or
    for Fisher when the table is too large to enumerate (a large cohort: the note says so).
    """
    from pannet.contingency import ContingencyError, chi2_test, fisher_test

    t = np.asarray(table, dtype=float)
    if np.isnan(t).any() or t.sum() == 0:
        return math.nan, ""
    try:
        return float((fisher_test if test == "fisher" else chi2_test)(t)["p"]), ""
    except ContingencyError:
        return math.nan, TOO_LARGE_FOR_EXACT


def _counts(df, column: str, levels, groups=GROUPS) -> np.ndarray:
    """levels x groups count matrix of one categorical column."""
    if df is None or column not in df.columns or "group" not in df.columns:
        return np.full((len(levels), len(groups)), np.nan)
    out = np.zeros((len(levels), len(groups)))
    for j, g in enumerate(groups):
        vc = df.loc[df["group"] == g, column].astype(str).value_counts()
        for i, lv in enumerate(levels):
            out[i, j] = vc.get(str(lv), 0)
    return out


def is_survival_summary(df) -> bool:
    """A survival stage per-group summary (one row per group; not the KM step table)."""
    return {"population", "endpoint", "group", "horizon", "median"} <= set(df.columns)


def is_survival_tests(df) -> bool:
    """A survival stage per-contrast test table (log-rank, Cox)."""
    cols = set(df.columns)
    return {"population", "endpoint", "logrank_p"} <= cols and "group" not in cols


def _survival_lookup(frames, population, endpoint, group=None):
    """The survival stage's summary row (population, endpoint, group), or its tests row
    (population, endpoint) when ``group`` is None; None when absent.

    Only summary and test tables are searched: the KM step tables share the key columns
    (and a ``surv`` column) but hold one row per event time.
    """
    for df in frames:
        if not (is_survival_tests(df) if group is None else is_survival_summary(df)):
            continue
        sel = (df["population"] == population) & (df["endpoint"] == endpoint)
        if group is not None:
            sel &= df["group"] == group
        if sel.any():
            return df[sel].iloc[0]
    return None


def _horizon_years(key: str) -> float:
    """'5y' -> 5.0 (the published ``surv_5y`` / ``ci_5y`` keys)."""
    try:
        return float(key.removesuffix("y"))
    except ValueError:
        return math.nan


def source_path(kind: str, population: str = "", endpoint: str = "") -> str:
    """The artefact (under ``results/``) a replication row's computed value comes from."""
    return {
        "attrition": "cohort/attrition.parquet",
        "analysis": "cohort/analysis.parquet",
        "matched": "matching/matched.parquet",
        "summary": f"survival/{population}_{endpoint}_summary.parquet",
        "tests": f"survival/{population}_{endpoint}_tests.parquet",
    }[kind]


def replicate(
    published: Mapping,
    *,
    analysis=None,
    matched=None,
    survival_frames=(),
    attrition=None,
    tolerance: Mapping[str, float] | None = None,
    synthetic: bool = True,
):
    """Put every published figure beside the computed one.

    Parameters
    ----------
    published : mapping
        The parsed ``study.published`` YAML.
    analysis, matched : pandas.DataFrame, optional
        ``results/cohort/analysis.parquet`` and ``results/matching/matched.parquet``.
    survival_frames : sequence of pandas.DataFrame
        The survival stage's tables: per-group summaries (``population``, ``endpoint``,
        ``group``, ``horizon``, ``median``, ``q25``, ``q75``, ``surv``, ``surv_lower``,
        ``surv_upper``; S(t) as a fraction) and tests (``population``, ``endpoint``,
        ``logrank_p``). Other tables (KM steps, immortal-time contrast) are ignored.
    attrition : pandas.DataFrame, optional
        ``results/cohort/attrition.parquet`` (:data:`pannet.cohort.ATTRITION_COLUMNS`): the
        flow figures are its ``site == "all"`` rows (assessed, included with the SG /
        non-SG split); without it the included counts come from ``analysis``.
    tolerance : mapping, optional
        Overrides of :data:`DEFAULT_TOLERANCE` (config ``report.replication_tolerance``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``within`` is None where nothing was computed;
        ``source`` names the artefact under ``results/`` the computed value comes from
        (:func:`source_path`).
    """
    import pandas as pd

    from pannet.pubaudit import smd_variants

    R = _Rows(tolerance)
    note = DEMO_NOTE if synthetic else ""
    flow = (published.get("study") or {}).get("flow") or {}
    nan = math.nan

    def grp_n(df, g):
        return nan if df is None or "group" not in df.columns else float((df["group"] == g).sum())

    # The flow figures are the attrition table's totals over all sites (its by-site rows
    # come first); the analysis cohort is the fallback when no attrition table is given.
    att_all = None
    if attrition is not None and {"criterion", "site", "remaining"} <= set(attrition.columns):
        att_all = attrition[attrition["site"] == "all"].set_index("criterion")

    def att(criterion, col="remaining"):
        if att_all is None or criterion not in att_all.index or col not in att_all.columns:
            return nan
        v = att_all.loc[criterion, col]
        return nan if pd.isna(v) else float(v)

    src_att = source_path("attrition")
    if "assessed" in flow:
        R.add("flow", "assessed", "", flow["assessed"], att("assessed"), "count", src_att)
    for key, g, col in (
        ("included", "", "remaining"),
        ("SG", "SG", "sg"),
        ("non-SG", "non-SG", "non_sg"),
    ):
        if key not in flow:
            continue
        if att_all is not None:
            R.add("flow", "included", g, flow[key], att("included", col), "count", src_att)
        else:
            comp = (
                (nan if analysis is None else float(len(analysis))) if not g else grp_n(analysis, g)
            )
            R.add("flow", "included", g, flow[key], comp, "count", source_path("analysis"))
    if "matched_pairs" in flow:
        pairs = nan
        if matched is not None and "pair_id" in matched.columns:
            pairs = float(matched["pair_id"].nunique())
        elif matched is not None:
            pairs = grp_n(matched, "SG")
        R.add(
            "flow",
            "matched_pairs",
            "",
            flow["matched_pairs"],
            pairs,
            "count",
            source_path("matched"),
        )

    # Table 1: level counts of the analysis cohort (before) and the matched cohort (after),
    # the per-level pooled-SD |SMD| x 100 of those counts (the balance stage's formula), and
    # the before-matching p of the test the paper names, on the computed counts.
    src = {"before": source_path("analysis"), "after": source_path("matched")}
    t1 = published.get("table1") or {}
    for var, spec in (t1.get("variables") or {}).items():
        levels = spec["levels"]
        for phase, df in (("before", analysis), ("after", matched)):
            if phase not in spec:
                continue
            comp = _counts(df, var, levels)
            pub = np.asarray(spec[phase], dtype=float)
            for i, lv in enumerate(levels):
                for j, g in enumerate(GROUPS):
                    R.add(
                        f"table1_{phase}",
                        f"{var}={lv}",
                        g,
                        pub[i, j],
                        comp[i, j],
                        "count",
                        src[phase],
                    )
            smd = [nan] * len(levels)
            n_comp = comp.sum(axis=0)
            if not np.isnan(comp).any() and (n_comp > 0).all():
                smd = smd_variants(comp, n_comp)["pooled_sd"]
            printed = spec.get(f"smd_{phase}_printed") or [None] * len(levels)
            for i, lv in enumerate(levels):
                if printed[i] is not None:
                    R.add(
                        f"table1_{phase}",
                        f"{var}={lv} SMD",
                        "",
                        printed[i],
                        smd[i],
                        "smd",
                        src[phase],
                    )
        if "p_before" in spec:
            test = spec.get("test", "chi2")
            p, why = _p(_counts(analysis, var, levels), test)
            R.add(
                "table1_before",
                f"{var} p ({test})",
                "",
                spec["p_before"],
                p,
                "p",
                src["before"],
                note=why,
            )

    # Survival: the survival stage's per-group summary (medians, quartiles and S(t) with
    # its CI, as fractions -> percent) and its tests table (log-rank p).
    for section, ep in (("overall_survival", "os"), ("progression_free_survival", "pfs")):
        block = published.get(section) or {}
        for phase, pop in (("before_matching", "all"), ("after_matching", "matched")):
            vals = block.get(phase)
            if not isinstance(vals, dict):
                continue
            sec = f"{section}_{phase}"
            src_sum = source_path("summary", pop, ep)
            for g in GROUPS:
                gv = vals.get(g) or {}
                row = _survival_lookup(survival_frames, pop, ep, g)

                def get(col, scale=1.0, row=row):
                    if row is None or col not in row.index:
                        return nan
                    v = row[col]
                    return nan if v is None or pd.isna(v) else float(v) * scale

                if "median" in gv:
                    R.add(sec, "median (years)", g, gv["median"], get("median"), "years", src_sum)
                if "iqr" in gv:
                    for q, val in zip(("25", "75"), gv["iqr"], strict=True):
                        R.add(
                            sec, f"{q}th percentile (years)", g, val, get(f"q{q}"), "years", src_sum
                        )
                for key in gv:
                    if not key.startswith("surv_"):
                        continue
                    h = key.removeprefix("surv_")
                    # S(t) is computed at the configured horizon only: a published 3-year
                    # figure is not compared with a 5-year estimate
                    at = get("horizon")
                    ok = not math.isnan(at) and abs(at - _horizon_years(h)) < 1e-9
                    why = "" if ok else f"survival summary horizon is {at:g} y, not {h}"
                    cols = [(f"{h} survival (%)", "surv", gv[key])]
                    ci = gv.get(f"ci_{h}")
                    if ci:
                        cols += [
                            (f"{h} survival lower CI (%)", "surv_lower", ci[0]),
                            (f"{h} survival upper CI (%)", "surv_upper", ci[1]),
                        ]
                    for item, col, pub in cols:
                        R.add(
                            sec,
                            item,
                            g,
                            pub,
                            get(col, 100) if ok else nan,
                            "percent",
                            src_sum,
                            note=why if row is not None else "",
                        )
            if "logrank_p" in vals:
                t = _survival_lookup(survival_frames, pop, ep)
                p = nan if t is None or pd.isna(t.get("logrank_p")) else float(t["logrank_p"])
                R.add(
                    sec, "log-rank p", "", vals["logrank_p"], p, "p", source_path("tests", pop, ep)
                )

    # Table 2: treatment indicators of the matched cohort; the p of the test the paper
    # names, on the computed counts and the computed group sizes.
    src_m = source_path("matched")
    for item, spec in (published.get("table2") or {}).items():
        comp = [nan, nan]
        if matched is not None and item in matched.columns:
            comp = [float(matched.loc[matched["group"] == g, item].sum()) for g in GROUPS]
        for g, pub, c in zip(GROUPS, spec["counts"], comp, strict=True):
            R.add("table2", item, g, pub, c, "count", src_m)
        p, why = nan, ""
        if matched is not None and not any(math.isnan(c) for c in comp):
            n = [grp_n(matched, g) for g in GROUPS]
            p, why = _p(
                np.array([[comp[0], n[0] - comp[0]], [comp[1], n[1] - comp[1]]]),
                spec.get("test", "chi2"),
            )
        test = spec.get("test", "chi2")
        R.add("table2", f"{item} p ({test})", "", spec["p"], p, "p", src_m, note=why)

    # Surgical outcomes: the surgery group of the analysis cohort (all 65, not the matched).
    src_a = source_path("analysis")
    surg = published.get("surgery") or {}
    sg = (
        analysis[analysis["group"] == "SG"]
        if analysis is not None and "group" in analysis.columns
        else None
    )
    for rtype, n in (surg.get("resection_type") or {}).items():
        c = (
            nan
            if sg is None or "resection_type" not in sg.columns
            else float((sg["resection_type"] == rtype).sum())
        )
        R.add("surgery", f"resection: {rtype}", "SG", n, c, "count", src_a)
    events = {}
    if sg is not None and "clavien_dindo" in sg.columns:
        events["clavien_dindo_ge2"] = sg["clavien_dindo"].fillna(-1) >= 2
        events["clavien_dindo_ge3"] = sg["clavien_dindo"].fillna(-1) >= 3
    if sg is not None and "death_90d" in sg.columns:
        events["mortality_90d"] = sg["death_90d"].fillna(0).astype(bool)
    for key in ("clavien_dindo_ge2", "clavien_dindo_ge3", "mortality_90d"):
        if key not in surg:
            continue
        hit = events.get(key)
        n = nan if hit is None else float(hit.sum())
        pct = nan if hit is None or not len(hit) else 100.0 * n / len(hit)
        R.add("surgery", key, "SG", surg[key]["n"], n, "count", src_a)
        if "pct" in surg[key]:
            R.add("surgery", f"{key} (%)", "SG", surg[key]["pct"], pct, "percent", src_a)

    out = pd.DataFrame(R.rows, columns=list(COLUMNS))
    out["within"] = out["within"].astype("boolean")
    out["note"] = out["note"].where(out["note"] != "", note)
    return out
