"""Bootstrap: batch-invariant replicates, intervals, and clear errors on bad input."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from pannet import bootstrap as bs
from pannet.cdm import TABLE1_LEVELS
from pannet.io import read_parquet, write_parquet

COVS = list(TABLE1_LEVELS)


def _config(scheme: str, replicates: int, batch_size: int) -> dict:
    return {
        "bootstrap": {
            "replicates": replicates,
            "batch_size": batch_size,
            "scheme": scheme,
            "seed": 20220151,
            "endpoint": "os",
            "conf_level": 0.95,
        },
        "matching": {
            "covariates": COVS,
            "caliper": 0.2,
            "std_caliper": True,
            "order": "largest",
            "distance": "logit",
            "ratio": 1,
            "replace": False,
        },
        "survival": {"horizons": {"os": 5}, "rmst_tau": {"os": 10}},
    }


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("boot")
    cohort = bs.synthetic_cohort(194, seed=7)
    write_parquet(cohort, d / "analysis.parquet", rule="test")
    write_parquet(bs.synthetic_matched(cohort, COVS), d / "matched.parquet", rule="test")
    return {"full": d / "analysis.parquet", "pairs": d / "matched.parquet"}


def test_replicate_seed_is_the_spawned_child():
    for r in (0, 1, 39, 199):
        child = np.random.SeedSequence(20220151).spawn(200)[r]
        assert np.array_equal(
            bs.replicate_seed(20220151, r).generate_state(8), child.generate_state(8)
        )


def test_batch_ranges():
    assert bs.batch_ranges(200, 50) == [(0, 50), (50, 100), (100, 150), (150, 200)]
    assert bs.batch_ranges(40, 40) == [(0, 40)]
    assert bs.batch_ranges(11, 5) == [(0, 5), (5, 10), (10, 11)]
    with pytest.raises(bs.BootstrapError, match="batch_size"):
        bs.batch_ranges(10, 0)


@pytest.mark.parametrize("scheme", ["pairs", "full"])
def test_batch_size_does_not_change_a_replicate(inputs, scheme):
    """B = 40 in 8 batches of 5 and in one batch of 40: identical replicate rows."""
    small = pd.concat(
        [bs.run_batch(inputs[scheme], _config(scheme, 40, 5), i) for i in range(8)],
        ignore_index=True,
    )
    one = bs.run_batch(inputs[scheme], _config(scheme, 40, 40), 0)
    assert len(one) == 40 * len(bs.ESTIMATES)
    pd.testing.assert_frame_equal(small, one, check_exact=True)
    # and a replicate does not depend on B either: the first 40 of B = 60
    more = bs.run_batch(inputs[scheme], _config(scheme, 60, 60), 0)
    pd.testing.assert_frame_equal(more.iloc[: len(one)], one, check_exact=True)
    assert one["value"].notna().any()


def test_summary_intervals(inputs):
    cfg = _config("pairs", 60, 20)
    paths = []
    for i in range(3):
        p = inputs["pairs"].parent / f"batch_{i}.parquet"
        write_parquet(bs.run_batch(inputs["pairs"], cfg, i), p, rule="test")
        paths.append(p)
    s = bs.run_summary(inputs["pairs"], paths, cfg).set_index("estimate")
    assert list(s.index) == list(bs.ESTIMATES)
    assert (s["replicates"] == 60).all()
    for e in ("log_hr", "rmst_diff", "survival_diff"):
        assert s.loc[e, "pct_lower"] < s.loc[e, "observed"] < s.loc[e, "pct_upper"]
        assert s.loc[e, "bca_lower"] < s.loc[e, "bca_upper"]
    # the pairs scheme keeps the number of pairs fixed
    n_pairs = read_parquet(inputs["pairs"])["pair_id"].nunique()
    assert (
        s.loc["n_pairs", ["observed", "pct_lower", "pct_upper", "bca_lower"]].tolist()
        == [n_pairs] * 4
    )
    # missing batch -> error naming the rule
    with pytest.raises(bs.BootstrapError, match="missing e.g. .*bootstrap_summary"):
        bs.run_summary(inputs["pairs"], paths[:2], cfg)


def test_bca_formula():
    """BCa by hand: z0 from the share below the estimate, a from the jackknife (Efron 1987)."""
    rng = np.random.default_rng(1)
    v = rng.gamma(2.0, size=999)
    jack = rng.normal(size=50) ** 2
    theta = 1.7
    r = bs.bca_interval(v, theta, jack, 0.9)
    nd = NormalDist()
    z0 = nd.inv_cdf(np.mean(v < theta))
    u = jack.mean() - jack
    a = np.sum(u**3) / (6 * np.sum(u**2) ** 1.5)
    lo = nd.cdf(z0 + (z0 + nd.inv_cdf(0.05)) / (1 - a * (z0 + nd.inv_cdf(0.05))))
    hi = nd.cdf(z0 + (z0 + nd.inv_cdf(0.95)) / (1 - a * (z0 + nd.inv_cdf(0.95))))
    assert r["z0"] == pytest.approx(z0, abs=1e-12)
    assert r["acceleration"] == pytest.approx(a, abs=1e-12)
    assert r["bca_lower"] == pytest.approx(np.quantile(v, lo), abs=1e-12)
    assert r["bca_upper"] == pytest.approx(np.quantile(v, hi), abs=1e-12)
    assert r["pct_lower"] == pytest.approx(np.quantile(v, 0.05), abs=1e-12)
    # no skew, no bias: BCa = percentile
    sym = np.arange(-500, 501, dtype=float)
    r0 = bs.bca_interval(sym, 0.0, np.array([-1.0, 0.0, 1.0]), 0.95)
    assert (r0["bca_lower"], r0["bca_upper"]) == (r0["pct_lower"], r0["pct_upper"])
    # undefined estimates (e.g. a median never reached) are left out and counted
    r1 = bs.bca_interval(np.r_[v, np.nan, np.nan], theta, jack, 0.9)
    assert r1["n_finite"] == v.size and r1["pct_lower"] == r["pct_lower"]
    assert math.isnan(bs.bca_interval(v, math.nan, jack)["bca_lower"])


@pytest.mark.parametrize("scheme", ["pairs", "full"])
def test_grouped_jackknife_leaves_out_whole_groups(inputs, scheme):
    """Above bootstrap.jackknife_groups units, value g is the estimate without group g
    (units i % groups == g), the same as estimating on a table without those units."""
    df = read_parquet(inputs[scheme])
    cfg = _config(scheme, 10, 10)
    s = bs._settings(cfg)
    data = bs.prepare(df, scheme, COVS, source="t")
    n = data.n_pairs if scheme == "pairs" else data.time.size
    exact = bs.jackknife(data, s["matching"], s["horizon"], s["tau"])
    assert exact["log_hr"].size == n
    # n <= groups: the exact leave-one-out jackknife
    same = bs.jackknife(data, s["matching"], s["horizon"], s["tau"], groups=n)
    for k in bs.ESTIMATES:
        assert np.array_equal(same[k], exact[k], equal_nan=True)
    groups = 7
    jk = bs.jackknife(data, s["matching"], s["horizon"], s["tau"], chunk=3, groups=groups)
    assert jk["log_hr"].size == groups
    for g in (0, 4, 6):
        if scheme == "pairs":
            labels = np.unique(df["pair_id"].to_numpy())
            keep = df["pair_id"].isin(labels[np.arange(n) % groups != g])
        else:
            keep = np.arange(n) % groups != g
        sub = bs.prepare(df[keep].reset_index(drop=True), scheme, COVS, source="t")
        obs = bs.observed(sub, s["matching"], s["horizon"], s["tau"])
        for k in bs.ESTIMATES:
            assert jk[k][g] == pytest.approx(obs[k], rel=1e-9, abs=1e-12, nan_ok=True)
    with pytest.raises(bs.BootstrapError, match="jackknife_groups"):
        bs.jackknife(data, s["matching"], s["horizon"], s["tau"], groups=1)


def test_bad_input_names_file_column_and_rows(inputs):
    df = read_parquet(inputs["pairs"])
    bad = df.copy()
    bad.loc[3, "os_years"] = np.nan
    with pytest.raises(bs.BootstrapError, match=r"m\.parquet: column 'os_years' .* rows \[3\]"):
        bs.prepare(bad, "pairs", source="m.parquet")
    with pytest.raises(bs.BootstrapError, match=r"column\(s\) \['pair_id'\] missing"):
        bs.prepare(df.drop(columns="pair_id"), "pairs", source="m.parquet")
    odd = df.copy()
    odd.loc[0, "pair_id"] = odd.loc[1, "pair_id"]
    with pytest.raises(bs.BootstrapError, match="not 1 treated \\+ 1 control"):
        bs.prepare(odd, "pairs", source="m.parquet")
    with pytest.raises(bs.BootstrapError, match="scheme"):
        bs.prepare(df, "wild")
    cfg = _config("full", 10, 5)
    cfg["matching"]["ratio"] = 2
    with pytest.raises(bs.BootstrapError, match="ratio"):
        bs.run_batch(inputs["full"], cfg, 0)


@pytest.mark.workflow
def test_demo_run_bootstrap_summary(demo_run):
    """`make run` bootstraps by default; its observed estimates are the survival stage's."""
    from pannet.config import load_config

    cfg = load_config()
    s = read_parquet(demo_run / "bootstrap/summary.parquet").set_index("estimate")
    assert list(s.index) == list(bs.ESTIMATES)
    assert (s["replicates"] == cfg["bootstrap"]["replicates"]).all()
    assert s[["pct_lower", "pct_upper", "bca_lower", "bca_upper"]].loc["log_hr"].notna().all()
    n_batches = len(bs.batch_ranges(cfg["bootstrap"]["replicates"], cfg["bootstrap"]["batch_size"]))
    assert sorted(p.name for p in (demo_run / "bootstrap").glob("batch_*.parquet")) == sorted(
        f"batch_{i}.parquet" for i in range(n_batches)
    )
    ep = cfg["bootstrap"]["endpoint"]
    tests = read_parquet(demo_run / f"survival/matched_{ep}_tests.parquet").iloc[0]
    assert s.loc["log_hr", "observed"] == pytest.approx(tests["cox_coef"], abs=1e-8)
    assert s.loc["n_pairs", "observed"] == tests["cox_n_clusters"]
