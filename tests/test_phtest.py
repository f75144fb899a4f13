"""The proportional-hazards test (pannet.phtest.cox_zph) against R survival 3.5-3 cox.zph.

R's datasets: lung (3 covariates, all four transforms; strata(inst)), veteran (a factor
term tested jointly, Breslow ties), ovarian (case weights), retinopathy (strata on the
matched pair, as in the study's stratified model).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_r_survival as run_r

from pannet.phtest import cox_zph, plot_zph, time_transform, zph_smooth
from pannet.stratcox import coxph


def assert_zph_equal(res, ref, rtol=1e-6):
    np.testing.assert_allclose(res.table["chisq"], ref["chisq"], rtol=rtol)
    np.testing.assert_allclose(res.table["p"], ref["p"], rtol=rtol)
    np.testing.assert_array_equal(res.table["df"], ref["df"])
    np.testing.assert_allclose(res.x, ref["x"], rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(res.time, ref["time"], rtol=rtol)
    np.testing.assert_allclose(
        res.y.reshape(len(res.time), -1),
        np.array(ref["y"], float).reshape(len(res.time), -1),
        rtol=rtol,
        atol=1e-8,
    )
    np.testing.assert_allclose(
        res.var, np.array(ref["var"], float).reshape(res.var.shape), rtol=rtol
    )


ZPH_OUT = (
    "out <- list(chisq = unname(z$table[, 'chisq']), df = unname(z$table[, 'df']),"
    " p = unname(z$table[, 'p']), x = z$x, time = z$time, y = unname(z$y), var = z$var)"
)


@pytest.mark.reference
@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_lung_three_covariates_every_transform(rscript, tmp_path, transform):
    # R: fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = na.omit(lung[...]))
    #    cox.zph(fit, transform = "km")$table
    #            chisq df     p
    #    age     0.244  1 0.622
    #    sex     2.475  1 0.116
    #    ph.ecog 2.353  1 0.125
    #    GLOBAL  4.975  3 0.174
    csv = tmp_path / "lung.csv"
    ref = run_r(
        rscript,
        f"""d <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog", "inst")])
        d$status <- d$status - 1
        write.csv(d, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d)
        z <- cox.zph(fit, transform = "{transform}")
        {ZPH_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    res = cox_zph(
        d["time"],
        d["status"],
        d[["age", "sex", "ph.ecog"]].to_numpy(float),
        names=["age", "sex", "ph.ecog"],
        transform=transform,
    )
    assert list(res.table["term"]) == ["age", "sex", "ph.ecog", "GLOBAL"]
    assert_zph_equal(res, ref)
    if transform == "km":
        np.testing.assert_allclose(res.table["chisq"], [0.2436, 2.4755, 2.3530, 4.9747], atol=5e-5)


@pytest.mark.reference
def test_lung_stratified_on_institution(rscript, tmp_path):
    # R: cox.zph(coxph(Surv(time, status) ~ age + sex + strata(inst), d))$table
    #            chisq df     p
    #    age    0.0740  1 0.786
    #    sex    2.6903  1 0.101
    #    GLOBAL 2.7391  2 0.254
    csv = tmp_path / "lung.csv"
    ref = run_r(
        rscript,
        f"""d <- na.omit(lung[, c("time", "status", "age", "sex", "inst")])
        d$status <- d$status - 1
        write.csv(d, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(time, status) ~ age + sex + strata(inst), data = d)
        z <- cox.zph(fit)
        {ZPH_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    res = cox_zph(d["time"], d["status"], d[["age", "sex"]], strata=d["inst"], names=["age", "sex"])
    assert_zph_equal(res, ref)
    np.testing.assert_allclose(res.table["chisq"], [0.0740, 2.6903, 2.7391], atol=5e-5)


@pytest.mark.reference
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_veteran_factor_term_tested_jointly(rscript, tmp_path, ties):
    # R: fit <- coxph(Surv(time, status) ~ trt + celltype + karno, veteran, ties = ties)
    #    cox.zph(fit)   # celltype: one 3-df term; many tied death times
    csv = tmp_path / "veteran.csv"
    ref = run_r(
        rscript,
        f"""write.csv(veteran, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(time, status) ~ trt + celltype + karno, data = veteran, ties = "{ties}")
        z <- cox.zph(fit)
        {ZPH_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    cells = ["smallcell", "adeno", "large"]  # R's treatment contrasts, squamous reference
    X = np.column_stack(
        [d["trt"], *[(d["celltype"] == c).astype(float) for c in cells], d["karno"]]
    )
    terms = {"trt": [0], "celltype": [1, 2, 3], "karno": [4]}
    res = cox_zph(d["time"], d["status"], X, terms=terms, ties=ties)
    assert list(res.table["df"]) == [1, 3, 1, 5]
    assert_zph_equal(res, ref)


@pytest.mark.reference
def test_ovarian_case_weights(rscript, tmp_path):
    # R: w <- 1 + seq_len(nrow(ovarian)) %% 3
    #    cox.zph(coxph(Surv(futime, fustat) ~ age + rx, ovarian, weights = w))
    csv = tmp_path / "ovarian.csv"
    ref = run_r(
        rscript,
        f"""d <- ovarian; d$w <- 1 + seq_len(nrow(d)) %% 3
        write.csv(d, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(futime, fustat) ~ age + rx, data = d, weights = w)
        z <- cox.zph(fit)
        {ZPH_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    res = cox_zph(d["futime"], d["fustat"], d[["age", "rx"]], weights=d["w"], names=["age", "rx"])
    assert_zph_equal(res, ref)


@pytest.mark.reference
def test_retinopathy_stratified_on_pair(rscript, tmp_path):
    # The study's second matched model: strata on the pair (here: the two eyes of a patient).
    # R: cox.zph(coxph(Surv(futime, status) ~ trt + strata(id), retinopathy))
    csv = tmp_path / "retinopathy.csv"
    ref = run_r(
        rscript,
        f"""write.csv(retinopathy, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(futime, status) ~ trt + strata(id), data = retinopathy)
        z <- cox.zph(fit)
        {ZPH_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    res = cox_zph(d["futime"], d["status"], d["trt"], strata=d["id"], names=["trt"])
    assert_zph_equal(res, ref)


def test_km_transform_is_left_continuous_km():
    # 1 - S(t-): S drops by 1/4 at t=1, by 1/3 (of 0.75) at t=2 (t=3 is censored)
    t = np.array([1.0, 2.0, 3.0, 4.0])
    e = np.array([1, 1, 0, 1])
    np.testing.assert_allclose(time_transform(t, e, "km"), [0.0, 0.25, 0.5, 0.5])
    np.testing.assert_allclose(time_transform(t, e, "rank"), [1, 2, 3, 4])
    with pytest.raises(ValueError, match="transform must be one of"):
        time_transform(t, e, "sqrt")


def test_ph_holds_in_exponential_data_and_fails_when_hazards_cross():
    rng = np.random.default_rng(np.random.SeedSequence(7))
    n = 400
    x = np.r_[np.zeros(n // 2), np.ones(n // 2)]
    # proportional: exponential with HR 2
    t = rng.exponential(1 / np.where(x == 1, 2.0, 1.0))
    ok = cox_zph(t, np.ones(n), x)
    # crossing: the treated hazard is high early and zero late (a Weibull shape change)
    t2 = np.where(x == 1, rng.weibull(0.4, n) * 1.0, rng.weibull(3.0, n) * 1.0)
    bad = cox_zph(t2, np.ones(n), x)
    assert ok.table["p"].iloc[-1] > 0.01
    assert bad.table["p"].iloc[-1] < 1e-6


def test_smooth_and_plot(tmp_path):
    rng = np.random.default_rng(np.random.SeedSequence(3))
    x = rng.integers(0, 2, 80).astype(float)
    t = rng.exponential(1 / np.exp(0.5 * x))
    res = cox_zph(t, rng.integers(0, 2, 80), x, names=["treated"])
    sm = zph_smooth(res)
    assert np.all(sm["lower"] <= sm["fit"]) and np.all(sm["fit"] <= sm["upper"])
    fit = coxph(t, np.ones(80), x)
    assert fit.iterations >= 2
    ax = plot_zph(res)
    ax.figure.savefig(tmp_path / "zph.png")
    assert (tmp_path / "zph.png").stat().st_size > 5000
