"""Cox fits of pannet.stratcox against R survival 3.5-3 ``coxph`` (and a closed form)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import run_r_survival as run_r

from pannet.stratcox import coxph, stratified_pair_cox

FIT_OUT = (
    "out <- list(coef = unname(coef(fit)), var = unname(fit$var), loglik = fit$loglik,"
    " score = fit$score, se = unname(sqrt(diag(fit$var))),"
    " p = unname(summary(fit)$coefficients[, 'Pr(>|z|)']),"
    " lower = unname(summary(fit)$conf.int[, 'lower .95']),"
    " upper = unname(summary(fit)$conf.int[, 'upper .95']))"
)


def assert_fit_equal(fit, ref, rtol=1e-6):
    np.testing.assert_allclose(fit.coef, ref["coef"], rtol=rtol)
    np.testing.assert_allclose(
        fit.var, np.array(ref["var"], float).reshape(fit.var.shape), rtol=rtol
    )
    np.testing.assert_allclose(fit.loglik, ref["loglik"], rtol=1e-9)
    np.testing.assert_allclose(fit.score, ref["score"], rtol=rtol)
    s = fit.summary()
    np.testing.assert_allclose(s["se"], ref["se"], rtol=rtol)
    np.testing.assert_allclose(s["p"], ref["p"], rtol=rtol)
    np.testing.assert_allclose(s["hr_lower"], ref["lower"], rtol=rtol)
    np.testing.assert_allclose(s["hr_upper"], ref["upper"], rtol=rtol)


@pytest.mark.reference
@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_lung_unstratified(rscript, tmp_path, ties):
    # R: coxph(Surv(time, status) ~ age + sex + ph.ecog, na.omit(lung[...]))  (Efron)
    #                 coef exp(coef)  se(coef)      z        p
    #    age      0.011067  1.011128  0.009267  1.194 0.232416
    #    sex     -0.552612  0.575445  0.167739 -3.294 0.000986
    #    ph.ecog  0.463728  1.589991  0.113577  4.083 4.45e-05
    csv = tmp_path / "lung.csv"
    ref = run_r(
        rscript,
        f"""d <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
        write.csv(d, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d, ties = "{ties}")
        {FIT_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    fit = coxph(d["time"], d["status"] - 1, d[["age", "sex", "ph.ecog"]], ties=ties)
    assert_fit_equal(fit, ref)
    if ties == "efron":
        np.testing.assert_allclose(fit.coef, [0.011067, -0.552612, 0.463728], atol=1e-6)


@pytest.mark.reference
def test_veteran_stratified_on_celltype(rscript, tmp_path):
    # R: coxph(Surv(time, status) ~ trt + karno + strata(celltype), veteran)  (tied times)
    csv = tmp_path / "veteran.csv"
    ref = run_r(
        rscript,
        f"""write.csv(veteran, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(time, status) ~ trt + karno + strata(celltype), data = veteran)
        {FIT_OUT}""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    fit = coxph(d["time"], d["status"], d[["trt", "karno"]], strata=d["celltype"])
    assert_fit_equal(fit, ref)


@pytest.mark.reference
def test_retinopathy_stratified_on_pair_beside_clustered(rscript, tmp_path):
    # The study's two matched outcome models, on R's own paired data (two eyes per patient,
    # one treated by laser):
    # R: coxph(Surv(futime, status) ~ trt + strata(id), retinopathy)
    #          coef exp(coef) se(coef)      z        p
    #    trt -0.9623    0.3820   0.2016 -4.773 1.82e-06
    # R: coxph(Surv(futime, status) ~ trt, retinopathy, cluster = id)  (robust SE)
    #          coef exp(coef) se(coef) robust se      z        p
    #    trt -0.7766    0.4600   0.1688    0.1475 -5.267 1.39e-07
    csv = tmp_path / "retinopathy.csv"
    ref = run_r(
        rscript,
        f"""write.csv(retinopathy, "{csv}", row.names = FALSE)
        fit <- coxph(Surv(futime, status) ~ trt + strata(id), data = retinopathy)
        {FIT_OUT}
        cl <- coxph(Surv(futime, status) ~ trt, data = retinopathy, cluster = id)
        out$cluster_coef <- unname(coef(cl))""",
        tmp_path,
    )
    d = pd.read_csv(csv)
    fit = coxph(d["futime"], d["status"], d["trt"], strata=d["id"])
    assert_fit_equal(fit, ref)
    np.testing.assert_allclose(fit.coef, [-0.9623], atol=5e-5)
    # the stratified (within-pair) estimate differs from the marginal clustered one
    assert abs(fit.coef[0] - ref["cluster_coef"][0]) > 0.1
    tab = stratified_pair_cox(
        d.rename(
            columns={"futime": "os_years", "status": "os_event", "trt": "treated", "id": "pair_id"}
        )
    )
    np.testing.assert_allclose(tab["coef"], ref["coef"], rtol=1e-6)
    np.testing.assert_allclose(tab["p"], ref["p"], rtol=1e-6)
    assert tab["pairs"].iloc[0] == d["id"].nunique()


def test_pairs_closed_form():
    # With pairs, one binary covariate and no ties, the stratified Cox likelihood is
    # conditional logistic: exp(beta) = (pairs where the treated died first) /
    # (pairs where the control died first); var = (a + c) / (a c).
    a, c, quiet = 3, 6, 4
    rows = []
    pid = 0
    for _ in range(a):  # treated dies first
        pid += 1
        rows += [(pid, 1, 1.0 + pid, 1), (pid, 0, 5.0 + pid, 1)]
    for _ in range(c):  # control dies first
        pid += 1
        rows += [(pid, 1, 5.0 + pid, 0), (pid, 0, 1.0 + pid, 1)]
    for _ in range(quiet):  # first member censored: uninformative
        pid += 1
        rows += [(pid, 1, 0.5, 0), (pid, 0, 2.0 + pid, 1)]
    df = pd.DataFrame(rows, columns=["pair_id", "treated", "os_years", "os_event"])
    tab = stratified_pair_cox(df)
    assert tab["hr"].iloc[0] == pytest.approx(a / c, rel=1e-10)
    assert tab["se"].iloc[0] == pytest.approx(np.sqrt((a + c) / (a * c)), rel=1e-8)
    assert tab["informative_pairs"].iloc[0] == a + c
    assert tab["pairs"].iloc[0] == a + c + quiet
    assert tab["nevent"].iloc[0] == 2 * a + c + quiet


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="event must be 0/1"):
        coxph([1, 2], [0, 2], [0, 1])
    with pytest.raises(KeyError, match="pair_id"):
        stratified_pair_cox(pd.DataFrame({"os_years": [1.0], "os_event": [1], "treated": [1]}))
    with pytest.raises(RuntimeError, match="did not converge"):
        # all treated die before any control: the MLE is infinite
        coxph([1, 2, 3, 4], [1, 1, 1, 1], [1, 1, 0, 0])
