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


def _counts(df, column: str, levels, groups=("SG", "non-SG")) -> np.ndarray:
    """levels x groups count matrix of one categorical column."""
    if df is None or column not in df.columns or "group" not in df.columns:
        return np.full((len(levels), len(groups)), np.nan)
    out = np.zeros((len(levels), len(groups)))
    for j, g in enumerate(groups):
        vc = df.loc[df["group"] == g, column].astype(str).value_counts()
        for i, lv in enumerate(levels):
            out[i, j] = vc.get(str(lv), 0)
    return out


def _survival_lookup(frames, population, endpoint, group=None):
    """The survival stage's row for (population, endpoint[, group]) or None."""
    for df in frames:
        cols = set(df.columns)
        if not {"population", "endpoint"} <= cols:
            continue
        if (group is None) == ("group" in cols):
            continue
        sel = (df["population"] == population) & (df["endpoint"] == endpoint)
        if group is not None:
            sel &= df["group"] == group
        if sel.any():
            return df[sel].iloc[0]
    return None


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
        ``group``, ``median``, ``q25``, ``q75``, ``surv``, ``surv_lower``,
        ``surv_upper``) and tests (``population``, ``endpoint``, ``logrank_p``).
    attrition : pandas.DataFrame, optional
        ``results/cohort/attrition.parquet``; its first count is the number assessed.
    tolerance : mapping, optional
        Overrides of :data:`DEFAULT_TOLERANCE` (config ``report.replication_tolerance``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``within`` is None where nothing was computed.
    """
    import pandas as pd

    from pannet.pubaudit import p_value_variants, smd_variants

    R = _Rows(tolerance)
    note = DEMO_NOTE if synthetic else ""
    flow = (published.get("study") or {}).get("flow") or {}
    nan = math.nan

    def grp_n(df, g):
        return nan if df is None or "group" not in df.columns else float((df["group"] == g).sum())

    if "assessed" in flow:
        assessed = nan
        if attrition is not None:
            ncol = next(
                (c for c in ("n", "n_patients", "count", "remaining") if c in attrition.columns),
                None,
            )
            if ncol is not None and len(attrition):
                assessed = float(attrition[ncol].iloc[0])
        R.add("flow", "assessed", "", flow["assessed"], assessed, "count", "attrition")
    if "included" in flow:
        R.add(
            "flow",
            "included",
            "",
            flow["included"],
            nan if analysis is None else len(analysis),
            "count",
            "analysis",
        )
    for g in ("SG", "non-SG"):
        if g in flow:
            R.add("flow", "included", g, flow[g], grp_n(analysis, g), "count", "analysis")
    if "matched_pairs" in flow:
        R.add(
            "flow",
            "matched_pairs",
            "",
            flow["matched_pairs"],
            grp_n(matched, "SG"),
            "count",
            "matched",
        )

    t1 = published.get("table1") or {}
    for var, spec in (t1.get("variables") or {}).items():
        levels = spec["levels"]
        for phase, df in (
            ("before", analysis),
            ("after", matched),
        ):
            if phase not in spec:
                continue
            comp = _counts(df, var, levels)
            pub = np.asarray(spec[phase], dtype=float)
            for i, lv in enumerate(levels):
                for j, g in enumerate(("SG", "non-SG")):
                    R.add(
                        f"table1_{phase}",
                        f"{var}={lv}",
                        g,
                        pub[i, j],
                        comp[i, j],
                        "count",
                        "cohort",
                    )
            if not np.isnan(comp).any():
                n_comp = comp.sum(axis=0)
                smd = (
                    smd_variants(comp, n_comp)["pooled_sd"]
                    if (n_comp > 0).all()
                    else [nan] * len(levels)
                )
            else:
                smd = [nan] * len(levels)
            for i, lv in enumerate(levels):
                printed = (spec.get(f"smd_{phase}_printed") or [None] * len(levels))[i]
                if printed is not None:
                    R.add(
                        f"table1_{phase}", f"{var}={lv} SMD", "", printed, smd[i], "smd", "cohort"
                    )
        if "p_before" in spec:
            comp = _counts(analysis, var, levels)
            p = nan
            if not np.isnan(comp).any() and (comp.sum(axis=0) > 0).all():
                p = p_value_variants(comp.T)[spec.get("test", "chi2")]
            R.add(
                "table1_before",
                f"{var} p ({spec.get('test', 'chi2')})",
                "",
                spec["p_before"],
                p,
                "p",
                "cohort",
            )

    for section, ep in (("overall_survival", "os"), ("progression_free_survival", "pfs")):
        block = published.get(section) or {}
        for phase, pop in (("before_matching", "all"), ("after_matching", "matched")):
            vals = block.get(phase)
            if not isinstance(vals, dict):
                continue
            for g in ("SG", "non-SG"):
                gv = vals.get(g) or {}
                row = _survival_lookup(survival_frames, pop, ep, g)

                def get(col, scale=1.0, row=row):
                    if row is None or col not in row.index:
                        return nan
                    v = row[col]
                    return nan if v is None or pd.isna(v) else float(v) * scale

                if "median" in gv:
                    R.add(
                        f"{section}_{phase}",
                        "median (years)",
                        g,
                        gv["median"],
                        get("median"),
                        "years",
                        "survival",
                    )
                if "iqr" in gv:
                    R.add(
                        f"{section}_{phase}",
                        "25th percentile (years)",
                        g,
                        gv["iqr"][0],
                        get("q25"),
                        "years",
                        "survival",
                    )
                    R.add(
                        f"{section}_{phase}",
                        "75th percentile (years)",
                        g,
                        gv["iqr"][1],
                        get("q75"),
                        "years",
                        "survival",
                    )
                for key in gv:
                    if key.startswith("surv_"):
                        h = key.removeprefix("surv_")
                        R.add(
                            f"{section}_{phase}",
                            f"{h} survival (%)",
                            g,
                            gv[key],
                            get("surv", 100),
                            "percent",
                            "survival",
                        )
                        ci = gv.get(f"ci_{h}")
                        if ci:
                            R.add(
                                f"{section}_{phase}",
                                f"{h} survival lower CI (%)",
                                g,
                                ci[0],
                                get("surv_lower", 100),
                                "percent",
                                "survival",
                            )
                            R.add(
                                f"{section}_{phase}",
                                f"{h} survival upper CI (%)",
                                g,
                                ci[1],
                                get("surv_upper", 100),
                                "percent",
                                "survival",
                            )
            if "logrank_p" in vals:
                t = _survival_lookup(survival_frames, pop, ep)
                p = nan if t is None or "logrank_p" not in t.index else float(t["logrank_p"])
                R.add(f"{section}_{phase}", "log-rank p", "", vals["logrank_p"], p, "p", "survival")

    n_after = (t1.get("n") or {}).get("after") or [50, 50]
    for item, spec in (published.get("table2") or {}).items():
        comp = [nan, nan]
        if matched is not None and item in matched.columns:
            comp = [float(matched.loc[matched["group"] == g, item].sum()) for g in ("SG", "non-SG")]
        for g, pub, c in zip(("SG", "non-SG"), spec["counts"], comp, strict=True):
            R.add("table2", item, g, pub, c, "count", "matched")
        p = nan
        if not any(math.isnan(c) for c in comp):
            n = [grp_n(matched, "SG"), grp_n(matched, "non-SG")] if matched is not None else n_after
            table = np.array([[comp[0], n[0] - comp[0]], [comp[1], n[1] - comp[1]]])
            if (table.sum(axis=1) > 0).all():
                p = p_value_variants(table)[spec.get("test", "chi2")]
        R.add("table2", f"{item} p ({spec.get('test', 'chi2')})", "", spec["p"], p, "p", "matched")

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
        R.add("surgery", f"resection: {rtype}", "SG", n, c, "count", "analysis")
    for key, thr in (("clavien_dindo_ge2", 2), ("clavien_dindo_ge3", 3)):
        if key in surg:
            c = (
                nan
                if sg is None or "clavien_dindo" not in sg.columns
                else float((sg["clavien_dindo"].fillna(-1) >= thr).sum())
            )
            R.add("surgery", key, "SG", surg[key]["n"], c, "count", "analysis")
    if "mortality_90d" in surg:
        c = nan if sg is None or "death_90d" not in sg.columns else float(sg["death_90d"].sum())
        R.add("surgery", "mortality_90d", "SG", surg["mortality_90d"]["n"], c, "count", "analysis")

    out = pd.DataFrame(R.rows, columns=list(COLUMNS))
    out["within"] = out["within"].astype("boolean")
    out["note"] = out["note"].where(out["note"] != "", note)
    return out
