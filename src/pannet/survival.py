"""Survival analysis as R's ``survival`` package computes it: the public API.

- :func:`km_summary` - Kaplan-Meier: n, events, median and quartiles with CIs
  (``quantile.survfit``), S(t) at given times with SE and CI (``summary.survfit``),
  restricted mean (``print(fit, rmean = tau)``) and the step table (``survfit``).
- :func:`logrank` - ``survdiff``; :func:`cox` - ``coxph`` (Efron ties, robust/cluster SE).
- :func:`rmst` - restricted mean survival time and its SE.
- :func:`evalue` - VanderWeele & Ding (2017) E-value of a hazard ratio and its CI.
- :func:`analyse_population` - the workflow's per population x endpoint tables.

The numerics live in :mod:`pannet.km` and :mod:`pannet.cox` (pure numpy), checked
against R live in ``tests/test_survival_reference.py``.
"""

from __future__ import annotations

import math

import numpy as np

from pannet.cox import cox, logrank
from pannet.km import (
    CONF_TYPES,
    conf_limits,
    km_at,
    km_quantiles,
    km_rmst,
    km_steps,
)

__all__ = [
    "CONF_TYPES",
    "analyse_population",
    "cox",
    "immortal_time_contrast",
    "evalue",
    "km_summary",
    "logrank",
    "rmst",
]

GROUPS = ("SG", "non-SG")  # plotting/reporting order; SG is the "treated" group


def km_summary(
    time,
    event,
    times=(),
    conf_type: str = "plain",
    conf_level: float = 0.95,
    quantiles=(0.25, 0.5, 0.75),
    rmst_tau: float | None = None,
) -> dict:
    """Kaplan-Meier summary of one sample, every number as R ``survival`` gives it.

    Parameters
    ----------
    time, event : array-like
        Follow-up time (>= 0) and event indicator (1 event, 0 censored).
    times : sequence of float
        Horizons for S(t) (``summary(fit, times = ...)``); NaN beyond the last time.
    conf_type : {"plain", "log", "log-log"}
        Pointwise CI of S (``survfit(conf.type = ...)``). R's default is "log"; the
        publication printed symmetric ("plain") intervals, hence this default.
    conf_level : float
    quantiles : sequence of float
        Probabilities p of the p-quantiles of the *event* distribution
        (``quantile.survfit``): p = 0.5 is the median, (0.25, 0.75) the printed IQR.
    rmst_tau : float, optional
        Truncation time of the restricted mean.

    Returns
    -------
    dict
        ``n, events, conf_type, conf_level``; ``median`` = {est, lower, upper};
        ``quantiles`` = {p, est, lower, upper} (arrays); ``survival`` = {time, n_risk,
        est, se, lower, upper} (arrays; ``se`` is the SE of S, as ``summary.survfit``);
        ``rmst`` = {tau, est, se} or None; ``steps`` = {time, n_risk, n_event, n_censor,
        surv, std_err, std_err_log, lower, upper} where ``std_err`` is the SE of S and
        ``std_err_log`` the Greenwood SE of -log S (R's ``survfit(...)$std.err``).
    """
    steps = km_steps(time, event)
    lower, upper = conf_limits(steps["surv"], steps["std_err_log"], conf_type, conf_level)
    steps["lower"], steps["upper"] = lower, upper
    probs = np.asarray(sorted(set(float(q) for q in quantiles) | {0.5}))
    q = km_quantiles(steps, probs, lower, upper)
    im = int(np.flatnonzero(probs == 0.5)[0])
    wanted = np.isin(probs, np.asarray(quantiles, dtype=float))
    surv_at = km_at(steps, times, conf_type, conf_level) if len(times) else None
    rm = None
    if rmst_tau is not None:
        est, se = km_rmst(steps, rmst_tau)
        rm = {"tau": float(rmst_tau), "est": est, "se": se}
    return {
        "n": int(np.asarray(time).size),
        "events": int(steps["n_event"].sum()),
        "conf_type": conf_type,
        "conf_level": conf_level,
        "median": {"est": q["est"][im], "lower": q["lower"][im], "upper": q["upper"][im]},
        "quantiles": {
            "p": probs[wanted],
            "est": q["est"][wanted],
            "lower": q["lower"][wanted],
            "upper": q["upper"][wanted],
        },
        "survival": surv_at,
        "rmst": rm,
        "steps": steps,
    }


def rmst(time, event, tau: float) -> dict:
    """Restricted mean survival time to ``tau`` and its SE (``survival:::survmean``)."""
    est, se = km_rmst(km_steps(time, event), tau)
    return {"tau": float(tau), "est": est, "se": se}


def _rr_from_hr(hr: float, rare: bool) -> float:
    if rare:
        return hr
    # VanderWeele (2017, 2020): for a common outcome, RR ~ (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR))
    return (1 - 0.5 ** math.sqrt(hr)) / (1 - 0.5 ** math.sqrt(1 / hr))


def _evalue_rr(rr: float) -> float:
    if rr < 1:
        rr = 1 / rr
    return rr + math.sqrt(rr * (rr - 1))


def evalue(hr: float, lower: float | None = None, upper: float | None = None, rare=False) -> dict:
    """E-value of a hazard ratio and of its confidence limit nearer to 1.

    VanderWeele & Ding (2017), Ann Intern Med 167:268. The E-value is the minimum
    strength of association (risk-ratio scale) an unmeasured confounder would need
    with both treatment and outcome to explain the estimate away:
    E = RR + sqrt(RR (RR - 1)) for RR >= 1 (RR -> 1/RR below 1).

    A hazard ratio is a risk ratio only when the outcome is rare (< 15 % by the end of
    follow-up). Death in stage IV pan-NET is common, so by default (``rare=False``) the
    HR is first converted with the square-root approximation
    RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)) (VanderWeele & Ding 2017, Table 2);
    ``rare=True`` uses the HR as is.

    Returns
    -------
    dict
        ``point`` (E-value of the estimate), ``ci`` (of the limit nearer 1; 1 when the
        interval includes 1), ``rr`` (the risk-ratio equivalents used), ``rare``.
    """
    if not hr > 0:
        raise ValueError(f"hazard ratio must be > 0; got {hr}")
    rr = _rr_from_hr(hr, rare)
    point = _evalue_rr(rr) if hr != 1 else 1.0
    ci = None
    if lower is not None and upper is not None:
        if lower <= 1 <= upper:
            ci = 1.0
        else:
            limit = lower if hr > 1 else upper
            ci = _evalue_rr(_rr_from_hr(limit, rare))
    return {"point": point, "ci": ci, "rr": rr, "rare": bool(rare)}


# ---------------------------------------------------------------------------
# The workflow's tables


def _endpoint_columns(endpoint: str, time_column: str | None = None) -> tuple[str, str]:
    if endpoint not in ("os", "pfs"):
        raise ValueError(f"endpoint must be 'os' or 'pfs'; got {endpoint!r}")
    return time_column or f"{endpoint}_years", f"{endpoint}_event"


def _check_frame(df, cols, population: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"population {population!r}: column(s) {missing} missing")
    for c in cols:
        bad = df.index[df[c].isna()].tolist()
        if bad:
            keys = df.loc[bad[:5], "patient_key"].tolist() if "patient_key" in df else bad[:5]
            raise ValueError(
                f"population {population!r}: column {c!r} is missing for {len(bad)} "
                f"patient(s), e.g. {keys}"
            )


def analyse_population(
    df,
    *,
    population: str,
    endpoint: str,
    horizon: float,
    conf_type: str = "plain",
    conf_level: float = 0.95,
    rmst_tau: float | None = None,
    ties: str = "efron",
    cluster_column: str | None = "pair_id",
    time_column: str | None = None,
    quantiles=(0.25, 0.5, 0.75),
    evalue_rare: bool = False,
) -> dict:
    """Every survival number of one population and endpoint, as three tables.

    Parameters
    ----------
    df : pandas.DataFrame
        Rows of ``results/cohort/analysis.parquet`` (or the matched / sensitivity
        subsets): ``group``, ``treated``, ``<endpoint>_years``, ``<endpoint>_event``.
    cluster_column : str, optional
        When present in ``df``, the Cox robust SE is clustered on it (matched pairs).
    time_column : str, optional
        Time column instead of ``<endpoint>_years`` (the immortal-time contrast uses
        ``naive_os_years``).

    Returns
    -------
    dict of DataFrames
        ``summary`` (one row per group), ``steps`` (the KM step tables with CIs),
        ``tests`` (one row: log-rank, Cox, E-value).
    """
    import pandas as pd

    tcol, ecol = _endpoint_columns(endpoint, time_column)
    _check_frame(df, ["group", "treated", tcol, ecol], population)
    groups = [g for g in GROUPS if g in set(df["group"])]
    unknown = sorted(set(df["group"]) - set(GROUPS))
    if unknown:
        raise ValueError(f"population {population!r}: unknown group label(s) {unknown}")
    base = {"population": population, "endpoint": endpoint}
    rows, steps = [], []
    for g in groups:
        sub = df[df["group"] == g]
        s = km_summary(
            sub[tcol].to_numpy(float),
            sub[ecol].to_numpy(int),
            times=(horizon,),
            conf_type=conf_type,
            conf_level=conf_level,
            quantiles=quantiles,
            rmst_tau=rmst_tau,
        )
        row = {
            **base,
            "group": g,
            "n": s["n"],
            "events": s["events"],
            "median": s["median"]["est"],
            "median_lower": s["median"]["lower"],
            "median_upper": s["median"]["upper"],
        }
        for p, est, lo, up in zip(
            s["quantiles"]["p"],
            s["quantiles"]["est"],
            s["quantiles"]["lower"],
            s["quantiles"]["upper"],
            strict=True,
        ):
            tag = f"q{round(p * 100):02d}"
            row.update({tag: est, f"{tag}_lower": lo, f"{tag}_upper": up})
        sv = s["survival"]
        row.update(
            {
                "horizon": float(horizon),
                "n_risk_horizon": sv["n_risk"][0],
                "surv": sv["est"][0],
                "surv_se": sv["se"][0],
                "surv_lower": sv["lower"][0],
                "surv_upper": sv["upper"][0],
                "rmst_tau": np.nan if s["rmst"] is None else s["rmst"]["tau"],
                "rmst": np.nan if s["rmst"] is None else s["rmst"]["est"],
                "rmst_se": np.nan if s["rmst"] is None else s["rmst"]["se"],
                "conf_type": conf_type,
                "conf_level": conf_level,
            }
        )
        rows.append(row)
        st = pd.DataFrame({k: s["steps"][k] for k in _STEP_COLUMNS})
        st.insert(0, "group", g)
        for k, v in reversed(base.items()):
            st.insert(0, k, v)
        steps.append(st)
    summary = pd.DataFrame(rows)
    steps_df = pd.concat(steps, ignore_index=True)
    tests = pd.DataFrame(
        [_tests_row(df, tcol, ecol, base, ties, cluster_column, conf_level, evalue_rare)]
    )
    return {"summary": summary, "steps": steps_df, "tests": tests}


_STEP_COLUMNS = ("time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower", "upper")


def _tests_row(df, tcol, ecol, base, ties, cluster_column, conf_level, evalue_rare) -> dict:
    t = df[tcol].to_numpy(float)
    e = df[ecol].to_numpy(int)
    row = {**base, "n": int(t.size), "events": int(e.sum())}
    nan = float("nan")
    if df["group"].nunique() < 2:
        return {**row, "logrank_chisq": nan, "logrank_df": 0, "logrank_p": nan}
    lr = logrank(t, e, df["group"].to_numpy(str))
    row.update({"logrank_chisq": lr["chisq"], "logrank_df": lr["df"], "logrank_p": lr["p"]})
    clustered = cluster_column is not None and cluster_column in df.columns
    cl = df[cluster_column].to_numpy() if clustered else None
    if clustered and df[cluster_column].isna().any():
        raise ValueError(
            f"population {base['population']!r}: cluster column {cluster_column!r} has missing values"
        )
    fit = cox(t, e, df["treated"].to_numpy(float), cluster=cl, ties=ties, conf_level=conf_level)
    ev = evalue(
        float(fit["hr"][0]), float(fit["hr_lower"][0]), float(fit["hr_upper"][0]), evalue_rare
    )
    row.update(
        {
            "cox_coef": float(fit["coef"][0]),
            "cox_se": float(fit["se"][0]),
            "cox_robust_se": float(fit["robust_se"][0]),
            "cox_clustered": bool(clustered),
            "cox_n_clusters": int(fit["n_clusters"]) if clustered else 0,
            "cox_ties": ties,
            "hr": float(fit["hr"][0]),
            "hr_lower": float(fit["hr_lower"][0]),
            "hr_upper": float(fit["hr_upper"][0]),
            "cox_z": float(fit["z"][0]),
            "cox_p": float(fit["p"][0]),
            "evalue_hr": ev["point"],
            "evalue_ci": ev["ci"],
            "evalue_rare_outcome": ev["rare"],
        }
    )
    return row


def immortal_time_contrast(populations: dict, *, horizon: float = 5.0, **kwargs):
    """OS by the study's time zero beside a naive time zero (metastasis date for all).

    Counting SG from diagnosis of metastases credits them the time they had to survive
    to reach surgery (immortal time); the naive rows show how much that flatters SG.

    Parameters
    ----------
    populations : dict of name -> DataFrame
        Each with ``os_years``, ``naive_os_years``, ``os_event``, ``group``, ``treated``.
    **kwargs
        Passed to :func:`analyse_population` (conf_type, ties, ...).

    Returns
    -------
    DataFrame
        One row per population, design (``study`` | ``naive``) and group: n, events,
        median with CI, S(horizon) with CI, log-rank p and Cox HR (SG vs non-SG).
    """
    import pandas as pd

    keep = [
        "n",
        "events",
        "median",
        "median_lower",
        "median_upper",
        "horizon",
        "surv",
        "surv_lower",
        "surv_upper",
    ]
    test_cols = [
        "logrank_chisq",
        "logrank_p",
        "hr",
        "hr_lower",
        "hr_upper",
        "cox_p",
        "cox_clustered",
    ]
    out = []
    for name, df in populations.items():
        for design, tcol in (("study", "os_years"), ("naive", "naive_os_years")):
            res = analyse_population(
                df, population=name, endpoint="os", horizon=horizon, time_column=tcol, **kwargs
            )
            summ = res["summary"][["group", *keep]].copy()
            t = res["tests"].iloc[0]
            for c in test_cols:
                summ[c] = t.get(c, float("nan"))
            summ.insert(
                0,
                "time_zero",
                "metastasis date for all"
                if design == "naive"
                else "SG: resection date; non-SG: metastasis date",
            )
            summ.insert(0, "design", design)
            summ.insert(0, "population", name)
            out.append(summ)
    return pd.concat(out, ignore_index=True)
