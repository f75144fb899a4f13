"""Propensity model and greedy caliper matcher (pannet.matching)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from pannet.matching import (
    MatchingError,
    caliper_width,
    design_matrix,
    fit_logistic,
    fit_propensity,
    match_nearest,
    match_nearest_arrays,
    propensity_score,
    run_matching,
    run_propensity,
    treated_order,
)


def brute_force(d, t, cal, order, ratio):
    """MatchIt's general routine, literally: for each treated in order, which.min of |d|
    over the free controls inside the caliper (first in data order on ties), in rounds."""
    idx1, idx0 = np.flatnonzero(t), np.flatnonzero(~t)
    used = np.zeros(d.size, bool)
    out = []
    for r in range(ratio):
        for i in treated_order(d, t, order):
            free = idx0[~used[idx0]]
            if free.size == 0:
                break
            diff = np.abs(d[free] - d[idx1[i]])
            if not (diff <= cal).any():
                continue
            j = int(np.argmin(np.where(diff <= cal, diff, np.inf)))
            used[free[j]] = True
            out.append((int(idx1[i]), int(free[j]), r))
    return out


@pytest.mark.parametrize("order", ["largest", "smallest", "data"])
@pytest.mark.parametrize("ratio", [1, 2, 3])
def test_matcher_equals_quadratic_definition(order, ratio):
    rng = np.random.default_rng(7)
    for trial in range(120):
        n = int(rng.integers(2, 50))
        # half the trials on a coarse grid: many exact ties and equidistant controls
        d = rng.integers(0, 6, n) / 4.0 if trial % 2 else rng.normal(size=n)
        t = rng.random(n) < rng.uniform(0.1, 0.7)
        cal = caliper_width(d, float(rng.choice([0.1, 0.5, 10.0])))
        tp, cp, rd, _ = match_nearest_arrays(d, t, cal, False, order, ratio)
        got = list(zip(tp.tolist(), cp.tolist(), rd.tolist(), strict=True))
        assert got == brute_force(d, t, cal, order, ratio)


def test_ties_go_to_first_control_in_data_order():
    # treated at 0.5; controls at 0.25 (pos 2) and 0.75 (pos 1) are equidistant: pos 1 wins,
    # as which.min over controls in data order; equal-valued controls: the first one
    d = np.array([0.5, 0.75, 0.25, 0.5, 0.5, 0.5])
    t = np.array([1, 0, 0, 1, 0, 0])
    m = match_nearest(d, t, caliper=None, order="data")
    assert m["control_index"].tolist() == [4, 5]  # exact ties first, in data order
    m2 = match_nearest(np.array([0.5, 0.75, 0.25]), np.array([1, 0, 0]), caliper=None)
    assert m2["control_index"].tolist() == [1]


def test_caliper_is_inclusive_and_sd_over_all_units():
    d = np.array([0.0, 1.0, 3.0, 10.0])
    t = np.array([1, 0, 1, 0])
    # R: sd(c(0, 1, 3, 10)) = 4.50925...; 0.2 * sd = 0.9018
    assert caliper_width(d, 0.2) == pytest.approx(0.2 * 4.509249752822894, rel=1e-14)
    assert match_nearest(d, t, caliper=0.2).empty
    m = match_nearest(d, t, caliper=1.0, std_caliper=False)  # |0 - 1| = 1 <= 1
    assert m[["treated_index", "control_index"]].values.tolist() == [[0, 1]]


def test_order_largest_changes_who_gets_the_shared_control():
    d = np.array([1.0, 1.2, 1.1])
    t = np.array([1, 1, 0])
    assert match_nearest(d, t, caliper=None, order="largest")["treated_index"].tolist() == [1]
    assert match_nearest(d, t, caliper=None, order="smallest")["treated_index"].tolist() == [0]
    r1 = match_nearest(d, t, caliper=None, order="random", random_state=3)
    r2 = match_nearest(d, t, caliper=None, order="random", random_state=3)
    pd.testing.assert_frame_equal(r1, r2)


def test_ratio_rounds_and_pair_ids():
    d = np.array([0.0, 0.1, 5.0, 5.1, 0.2, 4.9, 0.3])
    t = np.array([1, 0, 1, 0, 0, 0, 0])
    m = match_nearest(d, t, caliper=None, ratio=2)
    # round 1: treated 2 (largest) takes 3 (5.1 vs 4.9 equidistant, 3 first); treated 0 takes 1
    # round 2: treated 2 takes 5, treated 0 takes 4
    assert m.values[:, :4].tolist() == [[0, 1, 1, 1], [0, 4, 1, 2], [2, 3, 2, 1], [2, 5, 2, 2]]


def test_replace_takes_nearest_each_time():
    d = np.array([0.0, 0.05, 0.1, 3.0])
    t = np.array([1, 1, 0, 0])
    m = match_nearest(d, t, caliper=None, replace=True)
    assert sorted(m["control_index"].tolist()) == [2, 2]


def test_series_index_labels_are_returned():
    d = pd.Series([0.1, 0.2, 0.9], index=["a", "b", "c"])
    m = match_nearest(d, pd.Series([1, 0, 0], index=d.index), caliper=None)
    assert m[["treated_index", "control_index"]].values.tolist() == [["a", "b"]]


def test_bad_inputs_are_named():
    with pytest.raises(MatchingError, match="non-finite"):
        match_nearest(np.array([np.nan, 1.0]), np.array([1, 0]))
    with pytest.raises(MatchingError, match="order"):
        match_nearest(np.array([0.0, 1.0]), np.array([1, 0]), order="biggest")
    df = pd.DataFrame({"treated": [1, 0, 2], "sex": ["Male", "Female", "Male"]})
    with pytest.raises(MatchingError, match="treatment column 'treated' must be 0/1"):
        fit_propensity(df, "treated", ["sex"])
    df = pd.DataFrame({"treated": [1, 0], "sex": ["Male", None]})
    with pytest.raises(MatchingError, match="'sex' has missing values"):
        fit_propensity(df, "treated", ["sex"])
    df = pd.DataFrame({"treated": [1, 0], "sex": ["Male", "Other"]})
    with pytest.raises(MatchingError, match="not among its levels"):
        fit_propensity(df, "treated", ["sex"])


def test_design_matrix_reference_and_na_level():
    df = pd.DataFrame(
        {"primary_size_cm": ["<2", "N/A", ">5", "2-5"], "age_years": [50.0, 61, 70, 44]}
    )
    X, terms = design_matrix(df, ["primary_size_cm", "age_years"])
    assert [t["term"] for t in terms] == [
        "(Intercept)",
        "primary_size_cm2-5",
        "primary_size_cm>5",
        "primary_size_cmN/A",
        "age_years",
    ]
    assert X[:, 3].tolist() == [0, 1, 0, 0]
    _, terms = design_matrix(df, ["primary_size_cm"], reference={"primary_size_cm": "2-5"})
    assert [t["level"] for t in terms[1:]] == ["<2", ">5", "N/A"]


def test_irls_solves_the_score_equations():
    rng = np.random.default_rng(2)
    X = np.c_[np.ones(400), rng.normal(size=(400, 3))]
    y = (rng.random(400) < 1 / (1 + np.exp(-X @ [0.2, 1.0, -0.5, 0.3]))).astype(float)
    f = fit_logistic(X, y)
    assert f.converged
    np.testing.assert_allclose(X.T @ (y - f.fitted), 0, atol=1e-8)
    # the SE is the inverse Fisher information near the optimum (R, like fit_logistic, uses
    # the weights of the last WLS step, one iteration before the final coefficients)
    W = f.fitted * (1 - f.fitted)
    np.testing.assert_allclose(
        f.se, np.sqrt(np.diag(np.linalg.inv(X.T @ (X * W[:, None])))), rtol=1e-4
    )


def _toy_cohort(n=300, seed=1):
    rng = np.random.default_rng(seed)
    age = rng.choice(["<50", "50-59", "60-69", ">70"], n)
    size = rng.choice(["<2", "2-5", ">5", "N/A"], n)
    lin = -0.8 + 0.9 * (age == "<50") + 0.6 * (size == ">5")
    treated = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(np.int64)
    return pd.DataFrame(
        {
            "patient_key": [f"p{i:04d}" for i in range(n)],
            "site": "demo",
            "treated": treated,
            "age_group": age,
            "primary_size_cm": size,
        }
    )


def test_run_propensity_and_matching_outputs():
    a = _toy_cohort()
    coefs, scores = run_propensity(a, ["age_group", "primary_size_cm"])
    assert list(coefs.columns) == [
        "term",
        "variable",
        "level",
        "estimate",
        "std_error",
        "z",
        "p_value",
    ]
    np.testing.assert_allclose(scores["ps"], 1 / (1 + np.exp(-scores["logit"])), rtol=1e-12)
    assert (scores["distance"] == scores["logit"]).all()
    ps = propensity_score(a, "treated", ["age_group", "primary_size_cm"])
    np.testing.assert_allclose(ps.to_numpy(), scores["ps"].to_numpy())
    pairs, matched = run_matching(a, scores)
    n_pairs = len(pairs)
    assert n_pairs > 0 and pairs["treated_key"].is_unique and pairs["control_key"].is_unique
    assert (pairs["distance"] <= pairs["caliper_width"]).all()
    assert len(matched) == 2 * n_pairs
    assert (matched.groupby("pair_id")["treated"].agg(lambda s: tuple(sorted(s))) == (0, 1)).all()
    assert set(matched["patient_key"]) == set(pairs["treated_key"]) | set(pairs["control_key"])


def test_run_matching_rejects_misaligned_scores():
    a = _toy_cohort()
    _, scores = run_propensity(a, ["age_group"])
    with pytest.raises(MatchingError, match="rerun the propensity step"):
        run_matching(a, scores.iloc[::-1].reset_index(drop=True))


@pytest.mark.slow
def test_one_million_units_in_seconds():
    rng = np.random.default_rng(0)
    n = 1_000_000
    d = rng.normal(size=n)
    t = np.zeros(n, bool)
    t[rng.choice(n, 250_000, replace=False)] = True
    start = time.perf_counter()
    tp, cp, _, _ = match_nearest_arrays(d, t)
    elapsed = time.perf_counter() - start
    assert tp.size > 240_000 and np.unique(cp).size == cp.size
    assert elapsed < 20, f"1M units took {elapsed:.1f} s"
