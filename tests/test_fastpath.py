"""The vectorised fast path equals the main path on the same resamples (to 1e-8).

Main path: :mod:`pannet.matching` (R glm.fit / MatchIt), :mod:`pannet.km` (R survfit,
quantile.survfit, survmean), :mod:`pannet.cox` (R survdiff, coxph) applied to the
resampled rows themselves (duplicates included); the fast path gets the same resamples
as case counts. The R test runs the full scheme in R on the same resamples.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from pannet import bootstrap as bs
from pannet import cox, fastpath, km
from pannet import matching as mm
from pannet.cdm import TABLE1_LEVELS

COVS = list(TABLE1_LEVELS)
MATCHING = {"caliper": 0.2, "std_caliper": True, "order": "largest", "distance": "logit"}
TOL = 1e-8


@pytest.fixture(scope="module")
def cohort():
    return bs.synthetic_cohort(194, seed=3)


@pytest.fixture(scope="module")
def resamples(cohort):
    rng = np.random.default_rng(11)
    return rng.integers(0, len(cohort), size=(25, len(cohort)))


def _counts(idx, n):
    return np.stack([np.bincount(r, minlength=n) for r in idx]).astype(float)


def test_logistic_irls_equals_glm_fit(cohort, resamples):
    X, _ = mm.design_matrix(cohort, COVS)
    y = cohort["treated"].to_numpy(dtype=float)
    _, eta, conv = fastpath.logistic_irls(X, y, _counts(resamples, len(cohort)))
    assert conv.all()
    for b, idx in enumerate(resamples):
        sample = cohort.iloc[idx]
        Xs, _ = mm.design_matrix(sample, COVS)  # drops levels absent from the resample
        fit = mm.fit_logistic(Xs, sample["treated"].to_numpy(dtype=float))
        np.testing.assert_allclose(eta[b][idx], fit.linear_predictor, rtol=0, atol=TOL)


def test_greedy_match_equals_match_nearest(cohort, resamples):
    X, _ = mm.design_matrix(cohort, COVS)
    y = cohort["treated"].to_numpy(dtype=float)
    _, eta, _ = fastpath.logistic_irls(X, y, _counts(resamples, len(cohort)))
    dist = np.round(np.take_along_axis(eta, resamples, axis=1), bs.DIST_DECIMALS)
    treated = y[resamples].astype(bool)
    for order in ("largest", "smallest", "data"):
        partner = fastpath.greedy_match(dist, treated, order=order)
        for b in range(len(resamples)):
            tp, cp, _, _ = mm.match_nearest_arrays(dist[b], treated[b], order=order)
            got = {(int(t), int(partner[b, t])) for t in np.flatnonzero(partner[b] >= 0)}
            assert got == set(zip(tp.tolist(), cp.tolist(), strict=True)), (order, b)


def test_greedy_match_ties_and_leave_one_out():
    # equal distances: MatchIt takes the control first in data order; an absent unit
    # (jackknife) neither matches nor counts in the caliper's SD
    d = np.array([[0.0, 1.0, 1.0, 0.5, 2.0, 1.0]])
    t = np.array([[True, False, False, True, False, True]])
    p = fastpath.greedy_match(d, t, caliper=None)
    # largest first: unit 5 (1.0) takes control 1 of the tied 1 and 2; unit 3 (0.5)
    # then control 2; unit 0 control 4
    assert p.tolist() == [[4, -1, -1, 2, -1, 1]]
    tp, cp, _, _ = mm.match_nearest_arrays(d[0], t[0], caliper=None)
    assert sorted(zip(tp.tolist(), cp.tolist(), strict=True)) == [(0, 4), (3, 2), (5, 1)]
    present = np.ones_like(t)
    present[0, 2] = False
    p2 = fastpath.greedy_match(d, t, present, caliper=None)
    keep = present[0]
    tp, cp, _, _ = mm.match_nearest_arrays(d[0][keep], t[0][keep], caliper=None)
    pos = np.flatnonzero(keep)
    assert {(int(a), int(p2[0, a])) for a in np.flatnonzero(p2[0] >= 0)} == {
        (int(pos[a]), int(pos[c])) for a, c in zip(tp, cp, strict=True)
    }


def _per_group(cohort, idx):
    t = cohort["os_years"].to_numpy()[idx]
    e = cohort["os_event"].to_numpy()[idx]
    g = cohort["treated"].to_numpy()[idx]
    return t, e, g


def test_survival_equals_km_and_cox(cohort, resamples):
    time = cohort["os_years"].to_numpy()
    # coarse times (whole years) as well: many tied deaths for Efron
    for coarse in (False, True):
        tt = np.ceil(time) if coarse else time
        c = _counts(resamples, len(cohort))
        tab = fastpath.survival_table(c, tt, cohort["os_event"], cohort["treated"])
        s = [fastpath.km_surv(tab.at_risk[g], tab.events[g]) for g in (0, 1)]
        med = [fastpath.km_median(tab.grid, s[g], tab.last[g]) for g in (0, 1)]
        at = [fastpath.km_at(tab.grid, s[g], tab.last[g], 5.0) for g in (0, 1)]
        rm = [fastpath.km_rmst(tab.grid, s[g], 10.0) for g in (0, 1)]
        chisq = fastpath.logrank(tab)
        beta = fastpath.cox_binary(tab)
        for b, idx in enumerate(resamples):
            _, e, g = _per_group(cohort, idx)
            t = tt[idx]
            for grp in (0, 1):
                st = km.km_steps(t[g == grp], e[g == grp])
                # S at the group's own step times
                pos = np.searchsorted(tab.grid, st["time"])
                np.testing.assert_allclose(s[grp][b, pos], st["surv"], rtol=0, atol=1e-14)
                np.testing.assert_allclose(
                    med[grp][b], km.km_quantiles(st, probs=[0.5])["est"][0], rtol=0, atol=TOL
                )
                np.testing.assert_allclose(
                    at[grp][b], km.km_at(st, [5.0])["est"][0], rtol=0, atol=TOL
                )
                np.testing.assert_allclose(rm[grp][b], km.km_rmst(st, 10.0)[0], rtol=0, atol=TOL)
            np.testing.assert_allclose(chisq[b], cox.logrank(t, e, g)["chisq"], rtol=TOL)
            np.testing.assert_allclose(beta[b], cox.cox(t, e, g)["coef"][0], rtol=0, atol=TOL)


def test_km_median_midpoint_rule():
    # R: survfit(Surv(c(1,2,3,4), rep(1,4)) ~ 1) -> median 2.5 (S = 0.5 on [2, 3))
    tab = fastpath.survival_table(np.ones((1, 4)), [1.0, 2.0, 3.0, 4.0], [1, 1, 1, 1], [1, 1, 1, 1])
    s = fastpath.km_surv(tab.at_risk[1], tab.events[1])
    assert fastpath.km_median(tab.grid, s, tab.last[1])[0] == 2.5
    # R: survfit(Surv(c(1,2,3,4), c(1,1,0,0)) ~ 1) -> median 3 (S ends at 0.5; midpoint of 2 and the last time 4)
    tab = fastpath.survival_table(np.ones((1, 4)), [1.0, 2.0, 3.0, 4.0], [1, 1, 0, 0], [1, 1, 1, 1])
    s = fastpath.km_surv(tab.at_risk[1], tab.events[1])
    assert fastpath.km_median(tab.grid, s, tab.last[1])[0] == 3.0


@pytest.mark.parametrize(
    "scheme, matching",
    [
        ("pairs", MATCHING),
        ("full", MATCHING),
        ("full", {**MATCHING, "distance": "ps", "order": "smallest", "caliper": 0.5}),
    ],
)
def test_replicates_equal_main_path(cohort, scheme, matching):
    src = bs.synthetic_matched(cohort, COVS) if scheme == "pairs" else cohort
    data = bs.prepare(src, scheme, COVS)
    reps = bs.run_replicates(data, range(30), 20220151, matching, 5.0, 10.0)
    wide = reps.pivot(index="replicate", columns="estimate", values="value")
    for r in range(30):
        ref = bs.replicate_main(src, scheme, bs.draw(data, 20220151, r), COVS, matching, 5.0, 10.0)
        for k, v in ref.items():
            got = wide.loc[r, k]
            if np.isnan(v):
                assert np.isnan(got), (r, k)
            else:
                assert abs(got - v) <= TOL * max(1.0, abs(v)), (r, k, got, v)


@pytest.mark.reference
def test_full_scheme_equals_r(cohort, rscript, tmp_path):
    """R on the same resamples: glm, a greedy matcher with MatchIt's semantics, survfit,
    coxph. R's coxph stops at a relative log-likelihood change of 1e-9, so its log HR
    carries ~1e-9 of iteration error; pannet's Newton runs to 1e-12."""
    data = bs.prepare(cohort, "full", COVS)
    reps = bs.run_replicates(data, range(15), 5, MATCHING, 5.0, 10.0)
    wide = reps.pivot(index="replicate", columns="estimate", values="value")
    idx = np.stack([bs.draw(data, 5, r) for r in range(15)])
    cohort[[*COVS, "treated", "os_years", "os_event"]].to_csv(
        tmp_path / "d.csv", index=False, float_format="%.17g"
    )
    np.savetxt(tmp_path / "idx.csv", idx, fmt="%d", delimiter=",")
    levels = json.dumps({c: list(TABLE1_LEVELS[c]) for c in COVS})
    script = r"""
    suppressPackageStartupMessages(library(survival))
    a <- commandArgs(TRUE)
    d <- read.csv(a[1], stringsAsFactors = FALSE)
    idx <- as.matrix(read.csv(a[2], header = FALSE)) + 1L
    levs <- jsonlite::fromJSON(a[3]); covs <- names(levs)
    for (v in covs) d[[v]] <- factor(d[[v]], levels = levs[[v]])
    res <- list()
    for (r in seq_len(nrow(idx))) {
      s <- d[idx[r, ], ]; s[covs] <- lapply(s[covs], droplevels)
      fit <- glm(reformulate(covs, "treated"), family = binomial, data = s)
      lp <- round(unname(predict(fit)), 9); cal <- 0.2 * sd(lp)
      tr <- which(s$treated == 1); ct <- which(s$treated == 0); free <- rep(TRUE, length(ct))
      mt <- integer(0); mc <- integer(0)
      for (i in tr[order(-lp[tr])]) {
        dd <- abs(lp[ct] - lp[i]); dd[!free] <- Inf; j <- which.min(dd)
        if (dd[j] <= cal) { free[j] <- FALSE; mt <- c(mt, i); mc <- c(mc, ct[j]) }
      }
      m <- s[c(mt, mc), ]
      sf <- survfit(Surv(os_years, os_event) ~ treated, data = m)
      q <- unname(quantile(sf, 0.5, conf.int = FALSE))
      rm <- unname(summary(sf, rmean = 10)$table[, "rmean"])
      cx <- coxph(Surv(os_years, os_event) ~ treated, data = m, ties = "efron")
      res[[r]] <- c(length(mt), unname(coef(cx)), q[2] - q[1], rm[2] - rm[1])
    }
    cat(jsonlite::toJSON(res, digits = NA))
    """
    (tmp_path / "r.R").write_text(script)
    out = subprocess.run(
        [
            rscript,
            str(tmp_path / "r.R"),
            str(tmp_path / "d.csv"),
            str(tmp_path / "idx.csv"),
            levels,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    r_res = np.array(json.loads(out.stdout), dtype=float)
    np.testing.assert_array_equal(wide["n_pairs"].to_numpy(), r_res[:, 0])
    np.testing.assert_allclose(wide["log_hr"].to_numpy(), r_res[:, 1], rtol=0, atol=1e-7)
    np.testing.assert_allclose(wide["median_diff"].to_numpy(), r_res[:, 2], rtol=0, atol=1e-10)
    np.testing.assert_allclose(wide["rmst_diff"].to_numpy(), r_res[:, 3], rtol=0, atol=1e-10)
