"""Cross-checks of pannet.survival against R's survival package (3.5-3), run live.

One R session per test session computes every quantity on R's own data sets
(``survival::lung`` by sex, ``cluster(inst)``; ``survival::veteran`` by trt, whose
trt 2 median is the midpoint case 52.5) and on a small sample whose curve ends flat at
exactly 0.5 (``quantile.survfit``'s last-point rule), for all three CI types. Every
number must equal R's to 1e-6 relative (NA in R = NaN here, at the same places).
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from pannet import survival as sv

pytestmark = pytest.mark.reference

RTOL = 1e-6
PROBS = [0.1, 0.25, 0.5, 0.75, 0.9]
CONF_TYPES = ["plain", "log", "log-log"]

R_SCRIPT = r"""
suppressMessages({library(survival); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
fin <- function(x) { x <- as.numeric(x); x[!is.finite(x)] <- NA; x }
lung2 <- data.frame(time = lung$time, event = as.integer(lung$status == 2),
                    grp = lung$sex, inst = lung$inst, age = lung$age)
vet <- data.frame(time = veteran$time, event = veteran$status, grp = veteran$trt,
                  inst = as.integer(veteran$celltype), age = veteran$age)
flat <- data.frame(time = c(1, 2, 3, 4, 5, 6), event = c(1, 1, 1, 0, 0, 0),
                   grp = 1, inst = 1, age = 1)
sets <- list(lung = lung2, veteran = vet, flat = flat)
for (nm in names(sets)) write.csv(sets[[nm]], file.path(args[1], paste0(nm, ".csv")),
                                  row.names = FALSE)
horizons <- list(lung = c(0, 100, 365.25, 500, 1000, 2000), veteran = c(30, 100, 365, 999),
                 flat = c(2, 5, 6))
taus <- list(lung = c(500, 1000), veteran = c(100, 999), flat = c(3, 8))
probs <- c(0.1, 0.25, 0.5, 0.75, 0.9)
out <- list()
for (nm in names(sets)) {
  d <- sets[[nm]]
  for (g in sort(unique(d$grp))) {
    sub <- d[d$grp == g, ]
    for (ct in c("plain", "log", "log-log")) {
      f <- survfit(Surv(time, event) ~ 1, data = sub, conf.type = ct)
      q <- quantile(f, probs = probs)
      s <- summary(f, times = horizons[[nm]][horizons[[nm]] <= max(sub$time)])
      rm <- lapply(taus[[nm]], function(tau) {
        tb <- summary(f, rmean = tau)$table
        c(unname(tb["rmean"]), unname(tb["se(rmean)"]))
      })
      out[[paste(nm, g, ct, sep = "|")]] <- list(
        n = f$n, events = sum(f$n.event),
        steps = list(time = f$time, n_risk = f$n.risk, n_event = f$n.event,
                     n_censor = f$n.censor, surv = f$surv, std_err_log = fin(f$std.err),
                     lower = fin(f$lower), upper = fin(f$upper)),
        quantile = list(est = fin(q$quantile), lower = fin(q$lower), upper = fin(q$upper)),
        at = list(time = s$time, n_risk = s$n.risk, est = s$surv, se = fin(s$std.err),
                  lower = fin(s$lower), upper = fin(s$upper)),
        rmst = rm)
    }
  }
  if (length(unique(d$grp)) > 1) {
    sd <- survdiff(Surv(time, event) ~ grp, data = d)
    df <- length(sd$n) - 1
    out[[paste(nm, "logrank", sep = "|")]] <- list(
      chisq = sd$chisq, df = df, p = pchisq(sd$chisq, df, lower.tail = FALSE),
      observed = as.numeric(sd$obs), expected = as.numeric(sd$exp))
    fits <- list(
      plain = coxph(Surv(time, event) ~ grp, data = d),
      cluster = coxph(Surv(time, event) ~ grp + cluster(inst), data = d),
      robust2 = coxph(Surv(time, event) ~ grp + age, data = d, robust = TRUE),
      breslow = coxph(Surv(time, event) ~ grp + cluster(inst), data = d, ties = "breslow"))
    for (fn in names(fits)) {
      m <- fits[[fn]]
      sm <- summary(m)
      cf <- sm$coefficients
      out[[paste(nm, "cox", fn, sep = "|")]] <- list(
        n = m$n, coef = unname(cf[, "coef"]), se = unname(cf[, "se(coef)"]),
        robust_se = if ("robust se" %in% colnames(cf)) unname(cf[, "robust se"]) else NA,
        z = unname(cf[, "z"]), p = unname(cf[, "Pr(>|z|)"]),
        lower = unname(sm$conf.int[, "lower .95"]), upper = unname(sm$conf.int[, "upper .95"]),
        loglik = m$loglik)
    }
  }
}
sd4 <- survdiff(Surv(time, status) ~ celltype, data = veteran)
out[["veteran|logrank4"]] <- list(chisq = sd4$chisq, p = pchisq(sd4$chisq, 3, lower.tail = FALSE),
                                  expected = as.numeric(sd4$exp))
write.csv(data.frame(time = veteran$time, event = veteran$status, celltype = as.integer(veteran$celltype)),
          file.path(args[1], "veteran4.csv"), row.names = FALSE)
cat(toJSON(out, digits = NA, na = "null", auto_unbox = TRUE))
"""

# (data set, R call the numbers come from)
DATASETS = ("lung", "veteran", "flat")
HORIZONS = {
    "lung": [0, 100, 365.25, 500, 1000, 2000],
    "veteran": [30, 100, 365, 999],
    "flat": [2, 5, 6],
}
TAUS = {"lung": [500, 1000], "veteran": [100, 999], "flat": [3, 8]}


@pytest.fixture(scope="module")
def r_results(rscript, tmp_path_factory):
    d = tmp_path_factory.mktemp("rsurv")
    script = d / "ref.R"
    script.write_text(R_SCRIPT)
    proc = subprocess.run(
        [rscript, "--vanilla", str(script), str(d)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    data = {n: pd.read_csv(d / f"{n}.csv") for n in (*DATASETS, "veteran4")}
    return data, json.loads(proc.stdout)


def _arr(x) -> np.ndarray:
    if x is None:
        return np.array([np.nan])
    a = np.atleast_1d(np.asarray(x, dtype=object))
    return np.array([np.nan if v is None else float(v) for v in a], dtype=float)


def assert_r(ours, theirs, what: str) -> None:
    a = np.atleast_1d(np.asarray(ours, dtype=float))
    a = np.where(np.isfinite(a), a, np.nan)
    b = _arr(theirs)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs R {b.shape}"
    assert np.array_equal(np.isnan(a), np.isnan(b)), f"{what}: NA pattern {a} vs R {b}"
    ok = ~np.isnan(a)
    np.testing.assert_allclose(a[ok], b[ok], rtol=RTOL, atol=1e-12, err_msg=what)


def _cases():
    return [(ds, ct) for ds in DATASETS for ct in CONF_TYPES]


@pytest.mark.parametrize(("dataset", "conf_type"), _cases())
def test_km_summary_equals_r(r_results, dataset, conf_type):
    """survfit(Surv(time, event) ~ 1, conf.type = ct) per group: step table, quantile(),
    summary(times = ), summary(rmean = tau)$table, for each group of the data set."""
    data, ref = r_results
    d = data[dataset]
    for g in sorted(d["grp"].unique()):
        sub = d[d["grp"] == g]
        r = ref[f"{dataset}|{g}|{conf_type}"]
        hz = [h for h in HORIZONS[dataset] if h <= sub["time"].max()]
        s = sv.km_summary(sub["time"], sub["event"], times=hz, conf_type=conf_type, quantiles=PROBS)
        where = f"{dataset} grp={g} {conf_type}"
        assert s["n"] == r["n"] and s["events"] == r["events"]
        for k in ("time", "n_risk", "n_event", "n_censor", "surv", "std_err_log", "lower", "upper"):
            assert_r(s["steps"][k], r["steps"][k], f"{where} steps.{k}")
        for k in ("est", "lower", "upper"):
            assert_r(s["quantiles"][k], r["quantile"][k], f"{where} quantile.{k}")
        assert_r(s["median"]["est"], r["quantile"]["est"][2], f"{where} median")
        for k in ("n_risk", "est", "se", "lower", "upper"):
            assert_r(s["survival"][k], r["at"][k], f"{where} summary(times).{k}")
        for tau, (rmean, se) in zip(TAUS[dataset], r["rmst"], strict=True):
            m = sv.rmst(sub["time"], sub["event"], tau)
            assert_r([m["est"], m["se"]], [rmean, se], f"{where} rmean tau={tau}")


def test_veteran_midpoint_median(r_results):
    """R: quantile(survfit(Surv(time, status) ~ 1, veteran[veteran$trt == 2, ]), 0.5)
    -> 52.5 (S is exactly 0.5 between 52 and 53; a first-crossing rule gives 52)."""
    data, ref = r_results
    d = data["veteran"]
    sub = d[d["grp"] == 2]
    s = sv.km_summary(sub["time"], sub["event"], conf_type="log")
    assert s["median"]["est"] == pytest.approx(52.5, abs=0)
    assert ref["veteran|2|log"]["quantile"]["est"][2] == 52.5


def test_flat_tail_last_point_rule(r_results):
    """R: quantile(survfit(Surv(1:6, c(1,1,1,0,0,0)) ~ 1), 0.5) -> 4.5: the curve ends
    flat at exactly 0.5 from t = 3 to the last time 6 -> (3 + 6) / 2, R's last-point rule."""
    data, ref = r_results
    d = data["flat"]
    s = sv.km_summary(d["time"], d["event"], conf_type="log")
    assert s["steps"]["surv"][-1] == pytest.approx(0.5)
    assert ref["flat|1|log"]["quantile"]["est"][2] == 4.5
    assert s["median"]["est"] == 4.5


@pytest.mark.parametrize("dataset", ["lung", "veteran"])
def test_logrank_equals_r(r_results, dataset):
    """survdiff(Surv(time, event) ~ grp); lung by sex: Chisq = 10.3 on 1 df, p = 0.00131."""
    data, ref = r_results
    d = data[dataset]
    r = ref[f"{dataset}|logrank"]
    lr = sv.logrank(d["time"], d["event"], d["grp"])
    assert lr["df"] == r["df"]
    assert_r(lr["chisq"], r["chisq"], f"{dataset} logrank chisq")
    assert_r(lr["p"], r["p"], f"{dataset} logrank p")
    assert_r(lr["observed"], r["observed"], f"{dataset} observed")
    assert_r(lr["expected"], r["expected"], f"{dataset} expected")


@pytest.mark.parametrize("dataset", ["lung", "veteran"])
@pytest.mark.parametrize("fit", ["plain", "cluster", "robust2", "breslow"])
def test_cox_equals_r(r_results, dataset, fit):
    """coxph(Surv(time, event) ~ grp [+ cluster(inst)] [+ age, robust = TRUE]
    [, ties = "breslow"]); lung by sex + cluster(inst): coef -0.528731612820,
    se 0.167421224302, robust se 0.139850336305, p 0.000156390517 (227 rows: the NA
    inst row dropped, as R's na.omit does)."""
    data, ref = r_results
    d = data[dataset]
    r = ref[f"{dataset}|cox|{fit}"]
    kw = {"ties": "breslow" if fit == "breslow" else "efron"}
    cols = ["time", "event", "grp"]
    if fit in ("cluster", "breslow"):
        d = d.dropna(subset=["inst"])
        kw["cluster"] = d["inst"].to_numpy()
    x = d[["grp", "age"]].to_numpy(float) if fit == "robust2" else d["grp"].to_numpy(float)
    if fit == "robust2":
        kw["robust"] = True
    res = sv.cox(d["time"], d["event"], x, **kw)
    assert res["n"] == r["n"], cols
    where = f"{dataset} {fit}"
    assert_r(res["coef"], r["coef"], f"{where} coef")
    assert_r(res["se"], r["se"], f"{where} se")
    if r.get("robust_se") is not None:
        assert_r(res["robust_se"], r["robust_se"], f"{where} robust se")
    assert_r(res["z"], r["z"], f"{where} z")
    assert_r(res["p"], r["p"], f"{where} p")
    assert_r(res["hr_lower"], r["lower"], f"{where} hr lower")
    assert_r(res["hr_upper"], r["upper"], f"{where} hr upper")
    assert_r(res["loglik"], r["loglik"], f"{where} loglik")


def test_logrank_four_groups_equals_r(r_results):
    """survdiff(Surv(time, status) ~ celltype, veteran): Chisq = 25.4037003457854 on 3 df,
    p = 1.27124593900609e-05."""
    data, ref = r_results
    d = data["veteran4"]
    r = ref["veteran|logrank4"]
    lr = sv.logrank(d["time"], d["event"], d["celltype"])
    assert lr["df"] == 3
    assert_r(lr["chisq"], r["chisq"], "veteran celltype chisq")
    assert_r(lr["p"], r["p"], "veteran celltype p")
    assert_r(lr["expected"], r["expected"], "veteran celltype expected")
