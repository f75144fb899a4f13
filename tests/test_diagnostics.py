"""The diagnostics table on a synthetic cohort, through the real matching code."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pannet.cdm import TABLE1_LEVELS
from pannet.diagnostics import (
    DIAGNOSTICS_COLUMNS,
    build_diagnostics,
    concerns_estimate,
    failing_checks_for,
    run_all,
)

CONFIG = {
    "max_abs_smd": 0.1,
    "equipoise_bounds": [0.3, 0.7],
    "min_equipoise_share": 0.2,
    "max_generalizability_smd": 1.0,
    "max_mdrr": 10,
    "ph_alpha": 0.05,
    "ph_transform": "km",
    "alpha": 0.05,
    "power": 0.8,
    "min_cell_count": 5,
}
COVARIATES = ["age_group", "sex", "who_grade"]


def synthetic_cohort(n=400, seed=11) -> pd.DataFrame:
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    age = rng.choice(TABLE1_LEVELS["age_group"], n)
    sex = rng.choice(TABLE1_LEVELS["sex"], n)
    grade = rng.choice(TABLE1_LEVELS["who_grade"], n)
    lp = -1.0 + 1.2 * (age == "<50") - 0.8 * (age == ">70") + 0.5 * (grade == "G1")
    treated = (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)
    os_t = rng.exponential(1 / (0.15 * np.exp(-0.5 * treated)))
    cens = rng.uniform(2, 12, n)
    pfs_t = os_t * rng.uniform(0.3, 1.0, n)
    return pd.DataFrame(
        {
            "patient_key": [f"k{i:04d}" for i in range(n)],
            "site": "demo",
            "group": np.where(treated == 1, "SG", "non-SG"),
            "treated": treated,
            "age_group": age,
            "sex": sex,
            "who_grade": grade,
            "os_years": np.minimum(os_t, cens),
            "os_event": (os_t <= cens).astype(int),
            "pfs_years": np.minimum(pfs_t, cens),
            "pfs_event": (pfs_t <= cens).astype(int),
            "liver_directed_therapy": (rng.random(n) < 0.15).astype(int),
        }
    )


@pytest.fixture(scope="module")
def frames():
    from pannet.balance import run_balance
    from pannet.matching import run_matching, run_propensity

    analysis = synthetic_cohort()
    _, scores = run_propensity(analysis, covariates=COVARIATES)
    pairs, matched = run_matching(analysis, scores)
    balance = run_balance(analysis, scores, matched, covariates=COVARIATES)
    sens = matched[matched["liver_directed_therapy"] == 0].reset_index(drop=True)
    return run_all(
        analysis=analysis,
        scores=scores,
        pairs=pairs,
        matched=matched,
        balance=balance,
        sensitivity=sens,
        config=CONFIG,
        covariates=COVARIATES,
    ) | {"_pairs": pairs, "_analysis": analysis, "_balance": balance}


def test_table_schema_and_checks(frames):
    d = frames["diagnostics"]
    assert list(d.columns) == DIAGNOSTICS_COLUMNS
    checks = set(d["check"])
    assert {
        "balance_max_abs_smd",
        "equipoise",
        "caliper_unmatched_treated",
        "generalizability_max_abs_smd",
        "ph_test",
        "ph_test_strata_pair",
        "mdrr",
    } <= checks
    # one PH check per population x endpoint, one strata(pair) check per paired population
    assert len(d[d.check == "ph_test"]) == 6
    assert len(d[d.check == "ph_test_strata_pair"]) == 4
    assert set(d["status"]) <= {"pass", "fail", "info"}
    assert (d["passed"] == (d["status"] != "fail")).all()
    for r in d.itertuples():
        if r.direction == "<=":
            assert r.status == ("pass" if r.value <= r.threshold else "fail")
        elif r.direction == ">=":
            assert r.status == ("pass" if r.value >= r.threshold else "fail")
        assert len(r.concerns) >= 1


def test_values_agree_with_their_sources(frames):
    from pannet.power import mdrr

    d = frames["diagnostics"].set_index(["check", "population", "endpoint"])
    bal = frames["_balance"]
    cov = bal[bal.kind.eq("level") & bal.variable.ne("logit")]
    assert d.loc[("balance_max_abs_smd", "matched", ""), "value"] == pytest.approx(
        cov["smd_after"].abs().max() / 100
    )
    pw = frames["power"].set_index(["population", "endpoint"])
    r = pw.loc[("matched", "os")]
    assert r.n_treated == r.n_control  # 1:1
    assert d.loc[("mdrr", "matched", "os"), "value"] == pytest.approx(
        mdrr(r.n_treated, r.n_control, r.events)
    )
    ph = frames["ph_tests"]
    g = ph[(ph.term == "GLOBAL") & (ph.population == "all") & (ph.endpoint == "os")]
    assert d.loc[("ph_test", "all", "os"), "value"] == pytest.approx(g["p"].item())
    n_unmatched = (frames["_analysis"]["treated"] == 1).sum() - frames["_pairs"][
        "pair_id"
    ].nunique()
    eq = frames["equipoise"].set_index("group")
    assert eq.loc["all", "n_unmatched_treated"] == n_unmatched
    sc = frames["stratified_cox"]
    assert set(sc["model"]) == {"strata_pair"}
    assert (sc["informative_pairs"] <= sc["pairs"]).all()


def test_failing_checks_are_flagged_beside_the_estimates_they_concern(frames):
    d = frames["diagnostics"].copy()
    # force a failing balance gate: it must be flagged on matched estimates only
    d.loc[(d.check == "balance_max_abs_smd") & (d.population == "matched"), "status"] = "fail"
    flags = failing_checks_for(d, "matched", "os", "hr")
    assert "balance_max_abs_smd[matched]" in flags
    assert not any("balance" in f for f in failing_checks_for(d, "all", "os", "hr"))
    assert concerns_estimate(["*/*/*"], "all", "pfs", "km")
    assert concerns_estimate(["matched/os/hr"], "matched", "os", "hr")
    assert not concerns_estimate(["matched/os/hr"], "matched", "os", "hr_strata_pair")


def test_balance_gate_lists_failing_covariates():
    bal = pd.DataFrame(
        {
            "variable": ["sex", "sex", "age_group", "logit"],
            "level": ["Female", "Male", "<50", None],
            "kind": ["level", "level", "level", "numeric"],
            "smd_before": [30.0, -30.0, 40.0, 90.0],
            "smd_after": [4.0, -4.0, -15.0, 50.0],
        }
    )
    eq = pd.DataFrame(
        {
            "group": ["all", "treated", "control"],
            "share_in_bounds": [0.5, 0.4, 0.6],
            "lower_bound": 0.3,
            "upper_bound": 0.7,
            "n_treated": 20,
            "n_unmatched_treated": 3,
            "share_treated_unmatched": 0.15,
            "caliper_width": 0.2,
        }
    )
    gen = pd.DataFrame(
        {
            "cohort": ["all"],
            "variable": ["sex"],
            "level": ["Male"],
            "smd": [0.3],
            "pct_matched": [50.0],
            "pct_eligible": [40.0],
        }
    )
    empty_ph = pd.DataFrame(
        columns=["term", "population", "endpoint", "model", "p", "chisq", "df", "transform"]
    )
    empty_pw = pd.DataFrame(columns=["population", "endpoint", "mdrr"])
    d = build_diagnostics(
        balance=bal,
        equipoise=eq,
        generalizability=gen,
        ph_tests=empty_ph,
        power=empty_pw,
        config=CONFIG,
    ).set_index("check")
    b = d.loc["balance_max_abs_smd"]
    assert b["value"] == pytest.approx(0.15)  # the PS logit row is not a covariate
    assert b["status"] == "fail"
    assert "age_group=<50 (-0.150)" in b["detail"]
    assert d.loc["equipoise", "status"] == "pass"
    assert d.loc["caliper_unmatched_treated", "status"] == "info"
