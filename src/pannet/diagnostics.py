"""The study diagnostics: the checks that decide whether an estimate can be trusted.

``results/diagnostics/diagnostics.parquet`` has one row per check, in the spirit of OHDSI
CohortMethod's study diagnostics (thresholds from ``config["diagnostics"]``, OHDSI-like
defaults). Columns:

``check``
    balance_max_abs_smd | equipoise | generalizability_max_abs_smd |
    caliper_unmatched_treated | ph_test | ph_test_strata_pair | mdrr
``population``, ``endpoint``
    the population / endpoint the check was computed on ("" when it is not specific to
    one); the report can flag rows by these two columns directly.
``value``, ``threshold``, ``direction``
    the check passes when ``value <= threshold`` (direction "<=") or ``value >= threshold``
    (">="); "info" rows have no threshold.
``status``, ``passed``
    "pass" | "fail" | "info"; ``passed`` is False only for "fail" (an "info" row never fails).
``detail``
    plain-language detail (e.g. which covariates fail the balance gate).
``concerns``
    list of estimate ids the check bears on. An estimate id is
    ``"<population>/<endpoint>/<estimate>"`` with population all | matched | sensitivity,
    endpoint os | pfs, estimate hr (the Cox HR of results/survival/*_tests.parquet) |
    hr_strata_pair (results/diagnostics/stratified_cox.parquet) | logrank | km (medians,
    x-year survival, RMST); any part may be ``*``. :func:`concerns_estimate` answers "does
    this check concern that estimate?" and :func:`failing_checks_for` lists the failing
    checks to flag beside an estimate.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

import numpy as np
import pandas as pd

__all__ = [
    "ENDPOINT_COLUMNS",
    "DIAGNOSTICS_COLUMNS",
    "run_ph_tests",
    "run_stratified_cox",
    "run_power",
    "run_equipoise",
    "build_diagnostics",
    "concerns_estimate",
    "failing_checks_for",
    "run_all",
]

ENDPOINT_COLUMNS = {"os": ("os_years", "os_event"), "pfs": ("pfs_years", "pfs_event")}
DIAGNOSTICS_COLUMNS = [
    "check",
    "population",
    "endpoint",
    "value",
    "threshold",
    "direction",
    "status",
    "passed",
    "detail",
    "concerns",
]
PAIRED_POPULATIONS = ("matched", "sensitivity")


def _endpoint_data(df: pd.DataFrame, population: str, endpoint: str, extra=()) -> pd.DataFrame:
    if endpoint not in ENDPOINT_COLUMNS:
        raise ValueError(f"unknown endpoint {endpoint!r}; known: {sorted(ENDPOINT_COLUMNS)}")
    tcol, ecol = ENDPOINT_COLUMNS[endpoint]
    cols = [tcol, ecol, "treated", *extra]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(
            f"population {population!r}: column(s) {missing} missing (rule: diagnostics)"
        )
    d = df[cols].dropna()
    bad = d[(d[tcol] < 0) | ~d[ecol].isin([0, 1])]
    if len(bad):
        raise ValueError(
            f"population {population!r}, endpoint {endpoint!r}: row {bad.index[0]} has "
            f"{tcol}={bad[tcol].iloc[0]}, {ecol}={bad[ecol].iloc[0]} (need time >= 0, event 0/1)"
        )
    return d.rename(columns={tcol: "time", ecol: "event"})


def run_ph_tests(
    populations: dict[str, pd.DataFrame], endpoints, transform: str = "km"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """cox.zph for the study's Cox model of every population x endpoint.

    The model is ``coxph(Surv(time, event) ~ treated)`` (a pair cluster changes only the
    variance, not the coefficient, so ``cox.zph`` is the same); for the paired populations
    also ``coxph(... ~ treated + strata(pair_id))``.

    Returns
    -------
    tests : DataFrame
        population, endpoint, model ("cox" | "strata_pair"), term, chisq, df, p, transform,
        coef, resid_var (R ``cox.zph()$var`` of the term, for the plot's bands), n, events.
    residuals : DataFrame
        population, endpoint, model, time, x (transformed time), resid (scaled Schoenfeld
        residual): one row per event - patient-level, never shared.
    """
    from pannet.phtest import cox_zph

    tests, resid = [], []
    for pop, df in populations.items():
        for ep in endpoints:
            paired = pop in PAIRED_POPULATIONS and "pair_id" in df.columns
            d = _endpoint_data(df, pop, ep, ("pair_id",) if paired else ())
            models = [("cox", None)] + (
                [("strata_pair", d["pair_id"].to_numpy())] if paired else []
            )
            for model, strata in models:
                if d["event"].sum() == 0 or d["treated"].nunique() < 2:
                    continue
                z = cox_zph(
                    d["time"].to_numpy(float),
                    d["event"].to_numpy(int),
                    d["treated"].to_numpy(float),
                    strata=strata,
                    names=["treated"],
                    transform=transform,
                )
                t = z.table.copy()
                t.insert(0, "model", model)
                t.insert(0, "endpoint", ep)
                t.insert(0, "population", pop)
                t["transform"] = transform
                t["coef"] = float(z.fit.coef[0])
                t["resid_var"] = float(z.var[0, 0])
                t["n"] = len(d)
                t["events"] = int(d["event"].sum())
                tests.append(t)
                resid.append(
                    pd.DataFrame(
                        {
                            "population": pop,
                            "endpoint": ep,
                            "model": model,
                            "time": z.time,
                            "x": z.x,
                            "resid": z.y[:, 0],
                        }
                    )
                )
    return pd.concat(tests, ignore_index=True), pd.concat(resid, ignore_index=True)


def run_stratified_cox(
    populations: dict[str, pd.DataFrame], endpoints, clustered=None, conf_level: float = 0.95
) -> pd.DataFrame:
    """Cox stratified on the matched pair beside the pair-clustered robust-SE model.

    Parameters
    ----------
    populations : dict
        The paired populations (matched, sensitivity) with ``pair_id``.
    clustered : DataFrame, optional
        The survival stage's tests rows (population, endpoint, hr, hr_lower, hr_upper,
        cox_p, cox_robust_se) to show beside.

    Returns
    -------
    DataFrame
        population, endpoint, model ("strata_pair" | "cluster_pair"), hr, hr_lower,
        hr_upper, p, coef, se, n, nevent, pairs, informative_pairs.
    """
    from pannet.stratcox import stratified_pair_cox

    rows = []
    for pop, df in populations.items():
        for ep in endpoints:
            d = _endpoint_data(df, pop, ep, ("pair_id",))
            s = stratified_pair_cox(
                d, time="time", event="event", pair="pair_id", conf_level=conf_level
            ).iloc[0]
            rows.append(
                {
                    "population": pop,
                    "endpoint": ep,
                    "model": "strata_pair",
                    **{k: s[k] for k in ("hr", "hr_lower", "hr_upper", "p", "coef", "se")},
                    "n": int(s["n"]),
                    "nevent": int(s["nevent"]),
                    "pairs": int(s["pairs"]),
                    "informative_pairs": int(s["informative_pairs"]),
                }
            )
            if clustered is not None and len(clustered):
                c = clustered[(clustered["population"] == pop) & (clustered["endpoint"] == ep)]
                if len(c):
                    c = c.iloc[0]
                    rows.append(
                        {
                            "population": pop,
                            "endpoint": ep,
                            "model": "cluster_pair",
                            "hr": c["hr"],
                            "hr_lower": c["hr_lower"],
                            "hr_upper": c["hr_upper"],
                            "p": c["cox_p"],
                            "coef": c["cox_coef"],
                            "se": c["cox_robust_se"],
                            "n": int(c["n"]),
                            "nevent": int(c["events"]),
                            "pairs": int(d["pair_id"].nunique()),
                            "informative_pairs": -1,
                        }
                    )
    out = pd.DataFrame(rows)
    out["informative_pairs"] = out["informative_pairs"].astype("Int64").replace(-1, pd.NA)
    return out


def run_power(
    populations: dict[str, pd.DataFrame], endpoints, alpha: float = 0.05, power: float = 0.8
) -> pd.DataFrame:
    """Minimum detectable HR (Schoenfeld 1983) of every population x endpoint.

    Returns
    -------
    DataFrame
        population, endpoint, n_treated, n_control, events, alpha, power, mdrr,
        mdrr_protective (1 / mdrr).
    """
    from pannet.power import mdrr

    rows = []
    for pop, df in populations.items():
        for ep in endpoints:
            d = _endpoint_data(df, pop, ep)
            n1 = int((d["treated"] == 1).sum())
            n0 = int((d["treated"] == 0).sum())
            ev = int(d["event"].sum())
            m = mdrr(n1, n0, ev, alpha=alpha, power=power)
            rows.append(
                {
                    "population": pop,
                    "endpoint": ep,
                    "n_treated": n1,
                    "n_control": n0,
                    "events": ev,
                    "alpha": alpha,
                    "power": power,
                    "mdrr": m,
                    "mdrr_protective": 1 / m,
                }
            )
    return pd.DataFrame(rows)


def run_equipoise(
    analysis: pd.DataFrame,
    scores: pd.DataFrame,
    matched: pd.DataFrame,
    pairs: pd.DataFrame,
    covariates,
    bounds=(0.3, 0.7),
    bins: int = 20,
) -> dict[str, pd.DataFrame]:
    """Equipoise, preference-score histogram, caliper drops and the generalizability table.

    Returns
    -------
    dict
        ``equipoise`` (group rows of :func:`pannet.equipoise.equipoise_summary` plus the
        caliper columns on every row), ``preference`` (histogram), ``generalizability``.
    """
    from pannet.equipoise import (
        caliper_summary,
        equipoise_summary,
        generalizability_table,
        preference_histogram,
    )

    for col in ("ps", "treated"):
        if col not in scores.columns:
            raise KeyError(f"scores.parquet: column {col!r} missing (rule: equipoise)")
    ps = scores["ps"].to_numpy(float)
    t = scores["treated"].to_numpy(int)
    eq = equipoise_summary(ps, t, bounds)
    width = (
        float(pairs["caliper_width"].iloc[0]) if "caliper_width" in pairs and len(pairs) else None
    )
    cal = caliper_summary(
        int((t == 1).sum()), int((t == 0).sum()), int(pairs["pair_id"].nunique()), width
    )
    for k, v in cal.items():
        eq[k] = v
    return {
        "equipoise": eq,
        "preference": preference_histogram(ps, t, bins=bins),
        "generalizability": generalizability_table(analysis, matched, covariates),
    }


def _row(check, population, endpoint, value, threshold, direction, detail, concerns):
    if direction == "info" or threshold is None or value is None or not np.isfinite(value):
        status = "info" if direction == "info" else "fail"
    elif direction == "<=":
        status = "pass" if value <= threshold else "fail"
    else:
        status = "pass" if value >= threshold else "fail"
    if direction != "info" and value is not None and not np.isfinite(value):
        detail = f"{detail}; value not finite".lstrip("; ")
    return {
        "check": check,
        "population": population,
        "endpoint": endpoint,
        "value": float(value) if value is not None else np.nan,
        "threshold": float(threshold) if threshold is not None else np.nan,
        "direction": direction,
        "status": status,
        "passed": status != "fail",
        "detail": detail,
        "concerns": list(concerns),
    }


def build_diagnostics(
    *,
    balance: pd.DataFrame,
    equipoise: pd.DataFrame,
    generalizability: pd.DataFrame,
    ph_tests: pd.DataFrame,
    power: pd.DataFrame,
    config: dict,
    sensitivity_balance: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Assemble the diagnostics table (schema: module docstring) from the check results.

    Parameters
    ----------
    balance : DataFrame
        results/matching/balance.parquet (``smd_after`` x 100, per level / numeric row).
    equipoise, generalizability, ph_tests, power : DataFrame
        Outputs of :func:`run_equipoise`, :func:`run_ph_tests`, :func:`run_power`.
    config : dict
        ``config["diagnostics"]``.
    sensitivity_balance : DataFrame, optional
        The same balance table computed on the sensitivity population.
    """
    c = config
    rows = []
    # Balance gate: largest |SMD| over covariate levels (the PS logit row is not a covariate)
    for pop, bal in (("matched", balance), ("sensitivity", sensitivity_balance)):
        if bal is None or bal.empty:
            continue
        b = bal[bal["kind"].isin(["level", "numeric"]) & (bal["variable"] != "logit")]
        smd = b["smd_after"].abs() / 100
        worst = float(smd.max())
        fails = b.loc[smd > c["max_abs_smd"]]
        names = [
            f"{r.variable}={r.level} ({r.smd_after / 100:+.3f})"
            if pd.notna(r.level)
            else r.variable
            for r in fails.itertuples()
        ]
        top = b.loc[smd.idxmax()]
        detail = (
            f"failing: {', '.join(names)}"
            if names
            else f"largest: {top['variable']}={top['level']} ({top['smd_after'] / 100:+.3f})"
        )
        rows.append(
            _row(
                "balance_max_abs_smd",
                pop,
                "",
                worst,
                c["max_abs_smd"],
                "<=",
                detail,
                [f"{pop}/*/*"],
            )
        )
    # Equipoise (OHDSI: share of the whole population with preference score in bounds)
    eqi = equipoise.set_index("group")
    lo, hi = eqi.loc["all", "lower_bound"], eqi.loc["all", "upper_bound"]
    rows.append(
        _row(
            "equipoise",
            "",
            "",
            eqi.loc["all", "share_in_bounds"],
            c["min_equipoise_share"],
            ">=",
            f"share with preference score in [{lo}, {hi}]: treated "
            f"{eqi.loc['treated', 'share_in_bounds']:.2f}, control "
            f"{eqi.loc['control', 'share_in_bounds']:.2f}",
            ["*/*/*"],
        )
    )
    a = eqi.loc["all"]
    rows.append(
        _row(
            "caliper_unmatched_treated",
            "matched",
            "",
            a["share_treated_unmatched"],
            None,
            "info",
            f"{int(a['n_unmatched_treated'])} of {int(a['n_treated'])} treated had no control "
            f"within the caliper ({a['caliper_width']:.4g}); the matched estimates describe "
            "the matched treated",
            ["matched/*/*", "sensitivity/*/*"],
        )
    )
    g = generalizability[generalizability["cohort"] == "all"]
    gsmd = g["smd"].abs()
    gtop = g.loc[gsmd.idxmax()]
    rows.append(
        _row(
            "generalizability_max_abs_smd",
            "matched",
            "",
            float(gsmd.max()),
            c["max_generalizability_smd"],
            "<=",
            f"matched vs all eligible; largest: {gtop['variable']}={gtop['level']} "
            f"({gtop['pct_matched']:.1f}% vs {gtop['pct_eligible']:.1f}%)",
            ["matched/*/*", "sensitivity/*/*"],
        )
    )
    # Proportional hazards: GLOBAL row of each model
    glob = ph_tests[ph_tests["term"] == "GLOBAL"]
    for r in glob.itertuples():
        strat = r.model == "strata_pair"
        rows.append(
            _row(
                "ph_test_strata_pair" if strat else "ph_test",
                r.population,
                r.endpoint,
                r.p,
                c["ph_alpha"],
                ">=",
                f"cox.zph ({r.transform}) chisq {r.chisq:.3f} on {r.df} df; "
                "fails when p < threshold",
                [f"{r.population}/{r.endpoint}/{'hr_strata_pair' if strat else 'hr'}"],
            )
        )
    for r in power.itertuples():
        rows.append(
            _row(
                "mdrr",
                r.population,
                r.endpoint,
                r.mdrr,
                c["max_mdrr"],
                "<=",
                f"{r.events} events, {r.n_treated} treated / {r.n_control} control: detectable "
                f"HR >= {r.mdrr:.2f} or <= {r.mdrr_protective:.2f} (alpha {r.alpha}, power {r.power})",
                [f"{r.population}/{r.endpoint}/*"],
            )
        )
    return pd.DataFrame(rows, columns=DIAGNOSTICS_COLUMNS)


def concerns_estimate(concerns, population: str, endpoint: str, estimate: str = "hr") -> bool:
    """True when one of the ``concerns`` patterns matches the estimate id."""
    target = f"{population}/{endpoint}/{estimate}"
    return any(fnmatchcase(target, str(p)) for p in concerns)


def failing_checks_for(
    diagnostics: pd.DataFrame, population: str, endpoint: str, estimate: str = "hr"
) -> list[str]:
    """Names (``check[population/endpoint]``) of failing checks that concern an estimate.

    The report puts them beside the estimate, so a failing check is never hidden.
    """
    out = []
    for r in diagnostics[diagnostics["status"] == "fail"].itertuples():
        if concerns_estimate(r.concerns, population, endpoint, estimate):
            where = "/".join(x for x in (r.population, r.endpoint) if x)
            out.append(f"{r.check}[{where}]" if where else r.check)
    return out


def run_all(
    *,
    analysis: pd.DataFrame,
    scores: pd.DataFrame,
    pairs: pd.DataFrame,
    matched: pd.DataFrame,
    balance: pd.DataFrame,
    config: dict,
    covariates,
    endpoints=("os", "pfs"),
    sensitivity: pd.DataFrame | None = None,
    survival_tests: pd.DataFrame | None = None,
    populations=("all", "matched", "sensitivity"),
) -> dict[str, pd.DataFrame]:
    """Every diagnostic of the workflow's ``diagnostics`` rule, from its input tables.

    Returns
    -------
    dict of name -> DataFrame
        diagnostics, ph_tests, ph_residuals, stratified_cox, power, equipoise, preference,
        generalizability (each written to ``results/diagnostics/<name>.parquet``).
    """
    from pannet.balance import balance_table

    frames = {"all": analysis, "matched": matched, "sensitivity": sensitivity}
    pops = {p: frames[p] for p in populations if frames.get(p) is not None}
    ph, resid = run_ph_tests(pops, endpoints, transform=config["ph_transform"])
    paired = {p: d for p, d in pops.items() if p in PAIRED_POPULATIONS}
    strat = run_stratified_cox(paired, endpoints, clustered=survival_tests)
    pw = run_power(pops, endpoints, alpha=config["alpha"], power=config["power"])
    eq = run_equipoise(
        analysis, scores, matched, pairs, covariates, bounds=tuple(config["equipoise_bounds"])
    )
    sens_bal = None
    if "sensitivity" in pops:
        sens_bal = balance_table(analysis, pops["sensitivity"], covariates, treatment="treated")
    diag = build_diagnostics(
        balance=balance,
        equipoise=eq["equipoise"],
        generalizability=eq["generalizability"],
        ph_tests=ph,
        power=pw,
        config=config,
        sensitivity_balance=sens_bal,
    )
    return {
        "diagnostics": diag,
        "ph_tests": ph,
        "ph_residuals": resid,
        "stratified_cox": strat,
        "power": pw,
        **eq,
    }
