"""Cross-checks of pannet.matching / pannet.balance against R (glm, MatchIt, a greedy matcher).

R 4.2.2 + MatchIt 4.5.1 + jsonlite, run live (``rscript`` fixture). The R reference matcher
is MatchIt's general routine, reached by giving ``matchit()`` a distance matrix (the 4.5.1
vector fast path truncates distance differences to integers, MatchIt issue #163, and is
not a reference), and a literal greedy matcher written in R.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pandas as pd
import pytest

from pannet.balance import smd, smd_overall
from pannet.cdm import TABLE1_LEVELS
from pannet.matching import fit_propensity, match_nearest

pytestmark = pytest.mark.reference

LALONDE_COVS = ["age", "educ", "race", "married", "nodegree", "re74", "re75"]

# Greedy matching as MatchIt's nn_matchC defines it: treated in `ord`; each takes
# which.min(|d_c - d_t|) over free controls inside the caliper (first in data order on
# ties); `ratio` rounds over all treated units.
R_GREEDY = r"""
greedy <- function(d, treat, cal, ord, ratio = 1) {
  i1 <- which(treat == 1); i0 <- which(treat == 0)
  used <- rep(FALSE, length(d)); res <- NULL
  for (r in seq_len(ratio)) for (k in ord) {
    t <- i1[k]; free <- i0[!used[i0]]
    if (!length(free)) break
    diff <- abs(d[free] - d[t]); ok <- diff <= cal
    if (!any(ok)) next
    j <- free[ok][which.min(diff[ok])]
    used[j] <- TRUE; res <- rbind(res, c(t, j, r))
  }
  res
}
smd_bin <- function(x, t) {
  p1 <- mean(x[t == 1]); p0 <- mean(x[t == 0])
  if (p1 == p0) 0 else (p1 - p0) / sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
}
smd_yd <- function(x, t, lv) {
  p1 <- sapply(lv, function(l) mean(x[t == 1] == l)); p0 <- sapply(lv, function(l) mean(x[t == 0] == l))
  k <- (p1 + p0) > 0; p1 <- p1[k][-1]; p0 <- p0[k][-1]
  S <- (diag(p1, length(p1)) - outer(p1, p1) + diag(p0, length(p0)) - outer(p0, p0)) / 2
  sqrt(drop(t(p1 - p0) %*% solve(S) %*% (p1 - p0)))
}
"""


def run_r(rscript: str, code: str, tmp_path) -> dict:
    script = tmp_path / "ref.R"
    script.write_text(R_GREEDY + code)
    proc = subprocess.run([rscript, "--vanilla", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp_path / "out.json").read_text())


@pytest.fixture(scope="module")
def lalonde(rscript, tmp_path_factory):
    """MatchIt's lalonde (614 x 9) and R's glm/MatchIt results on it."""
    tmp = tmp_path_factory.mktemp("lalonde")
    code = f"""
library(MatchIt); library(jsonlite); data(lalonde)
f <- glm(treat ~ age + educ + race + married + nodegree + re74 + re75, family = binomial, data = lalonde)
d <- unname(predict(f)); cal <- 0.2 * sd(d)
i1 <- which(lalonde$treat == 1); i0 <- which(lalonde$treat == 0)
ord <- order(d[i1], decreasing = TRUE)
g1 <- greedy(d, lalonde$treat, cal, ord); g2 <- greedy(d, lalonde$treat, cal, ord, ratio = 2)
# MatchIt's general routine: distance matrix, treated rows put in m.order = "largest" order
D <- abs(outer(d[i1][ord], d[i0], "-")); dat2 <- rbind(lalonde[i1[ord], ], lalonde[i0, ])
m <- matchit(treat ~ age + educ + race + married + nodegree + re74 + re75, data = dat2,
             distance = D, caliper = cal, std.caliper = FALSE)
mm <- m$match.matrix
matched <- sort(c(g1[, 1], g1[, 2]))
x <- lalonde[matched, ]; tt <- x$treat
smds <- list(married = smd_bin(x$married, tt), nodegree = smd_bin(x$nodegree, tt),
             black = smd_bin(x$race == "black", tt), married_before = smd_bin(lalonde$married, lalonde$treat),
             race_yd_before = smd_yd(lalonde$race, lalonde$treat, levels(lalonde$race)),
             race_yd_after = smd_yd(x$race, tt, levels(x$race)))
out <- list(data = lalonde, rownames = rownames(lalonde), coef = unname(coef(summary(f))[, 1]),
            se = unname(coef(summary(f))[, 2]), terms = rownames(coef(summary(f))), eta = d,
            fitted = unname(fitted(f)), cal = cal, g1 = g1, g2 = g2,
            mm_t = rownames(mm), mm_c = unname(mm[, 1]), smds = smds)
writeLines(toJSON(out, digits = NA, dataframe = "columns"), "{tmp}/out.json")
"""
    out = run_r(rscript, code, tmp)
    out["df"] = pd.DataFrame(out.pop("data"), index=out["rownames"])
    return out


def test_glm_lalonde(lalonde):
    # R: coef(summary(glm(treat ~ age + educ + race + married + nodegree + re74 + re75,
    #        family = binomial, data = lalonde)))[, 1:2]
    #   (Intercept) -1.663e+00 (0.9955), age 0.01578 (0.01013), ... racehispan -2.082e+00 ...
    m = fit_propensity(lalonde["df"], "treat", LALONDE_COVS)
    assert m.coefficients["term"].tolist() == lalonde["terms"]
    assert np.abs(m.coefficients["estimate"] - lalonde["coef"]).max() < 1e-6
    assert np.abs(m.coefficients["std_error"] - lalonde["se"]).max() < 1e-6
    assert np.abs(m.logit.to_numpy() - lalonde["eta"]).max() < 1e-6
    assert np.abs(m.ps.to_numpy() - lalonde["fitted"]).max() < 1e-6


def test_pairs_lalonde_identical_to_r(lalonde):
    # R: greedy(predict(glm), treat, 0.2 * sd(predict(glm)), order(d[treat == 1], decreasing = TRUE))
    #    -> 117 pairs; matchit(..., distance = D, caliper = cal, std.caliper = FALSE) -> the same
    #    117 (MatchIt 4.5.1's fast path with distance = "glm", caliper = 0.2 gives 131: issue #163)
    df = lalonde["df"]
    logit = fit_propensity(df, "treat", LALONDE_COVS).logit
    m = match_nearest(logit.reset_index(drop=True), df["treat"].to_numpy(), caliper=0.2)
    got = sorted(zip(m["treated_index"] + 1, m["control_index"] + 1, strict=True))
    g1 = sorted(tuple(r[:2]) for r in lalonde["g1"])
    assert len(got) == 117
    assert got == g1
    names = df.index.to_numpy()
    by_matchit = sorted(
        (t, c) for t, c in zip(lalonde["mm_t"], lalonde["mm_c"], strict=True) if c is not None
    )
    assert (
        sorted(zip(names[m["treated_index"]], names[m["control_index"]], strict=True)) == by_matchit
    )


def test_pairs_lalonde_ratio2_identical_to_r(lalonde):
    # R: greedy(d, treat, cal, ord, ratio = 2)  (rounds over all treated, as nn_matchC)
    df = lalonde["df"]
    logit = fit_propensity(df, "treat", LALONDE_COVS).logit.to_numpy()
    m = match_nearest(logit, df["treat"].to_numpy(), caliper=0.2, ratio=2)
    got = sorted(zip(m["treated_index"] + 1, m["control_index"] + 1, m["round"], strict=True))
    assert got == sorted(tuple(r) for r in lalonde["g2"])


def test_smd_lalonde_matched(lalonde):
    # R: smd_bin(x$married, x$treat) etc. on the 117 matched pairs; smd_yd() = Yang-Dalton via solve()
    df = lalonde["df"]
    logit = fit_propensity(df, "treat", LALONDE_COVS).logit.to_numpy()
    m = match_nearest(logit, df["treat"].to_numpy(), caliper=0.2)
    x = df.iloc[np.sort(np.r_[m["treated_index"], m["control_index"]])]
    t = x["treat"].to_numpy()
    s = lalonde["smds"]
    assert abs(smd(x["married"], t) - s["married"][0]) < 1e-10
    assert abs(smd(x["nodegree"], t) - s["nodegree"][0]) < 1e-10
    assert abs(smd((x["race"] == "black").astype(float), t) - s["black"][0]) < 1e-10
    assert abs(smd(df["married"], df["treat"]) - s["married_before"][0]) < 1e-10
    lv = ["black", "hispan", "white"]
    assert abs(smd_overall(df["race"], df["treat"], lv) - s["race_yd_before"][0]) < 1e-10
    assert abs(smd_overall(x["race"], t, lv) - s["race_yd_after"][0]) < 1e-10


@pytest.mark.workflow
def test_demo_glm_pairs_and_smd_equal_r(demo_run, rscript, tmp_path):
    """The demo analysis data: glm, the pairs of the workflow and balance against R."""
    from pannet.config import load_config
    from pannet.io import read_parquet

    cfg = load_config(demo_run.parent / "config" / "config.yaml")["matching"]
    covs = cfg["covariates"]
    a = read_parquet(demo_run / "cohort" / "analysis.parquet")
    pairs = read_parquet(demo_run / "matching" / "pairs.parquet")
    coefs = read_parquet(demo_run / "matching" / "propensity.parquet")
    balance = read_parquet(demo_run / "matching" / "balance.parquet")
    data = a[["patient_key", "treated", *covs]].astype({c: str for c in covs})
    (tmp_path / "in.json").write_text(
        json.dumps(
            {
                "data": data.to_dict(orient="list"),
                "levels": {c: list(TABLE1_LEVELS[c]) for c in covs},
            }
        )
    )
    code = f"""
library(jsonlite)
inp <- fromJSON("{tmp_path}/in.json"); d <- as.data.frame(inp$data)
covs <- {json.dumps(covs).replace("[", "c(").replace("]", ")")}
for (v in covs) d[[v]] <- factor(d[[v]], levels = inp$levels[[v]])
f <- glm(reformulate(covs, "treated"), family = binomial, data = d)
eta <- unname(predict(f)); cal <- 0.2 * sd(eta)
ord <- order(eta[d$treated == 1], decreasing = TRUE)
g <- greedy(eta, d$treated, cal, ord)
x <- d[sort(c(g[, 1], g[, 2])), ]
lev <- list(); yd <- list()
for (v in covs) for (l in inp$levels[[v]]) lev[[paste(v, l, sep = "|")]] <-
  c(smd_bin(d[[v]] == l, d$treated), smd_bin(x[[v]] == l, x$treated))
for (v in covs) if (length(inp$levels[[v]]) > 2) yd[[v]] <-
  c(smd_yd(d[[v]], d$treated, inp$levels[[v]]), smd_yd(x[[v]], x$treated, inp$levels[[v]]))
out <- list(terms = names(coef(f)), coef = unname(coef(f)), se = unname(coef(summary(f))[, 2]),
            keys_t = d$patient_key[g[, 1]], keys_c = d$patient_key[g[, 2]], lev = lev, yd = yd)
writeLines(toJSON(out, digits = NA), "{tmp_path}/out.json")
"""
    r = run_r(rscript, code, tmp_path)
    # R: coef(summary(glm(treated ~ age_group + ... + who_grade, family = binomial)))
    assert coefs["term"].tolist() == r["terms"]
    assert np.abs(coefs["estimate"].to_numpy() - r["coef"]).max() < 1e-6
    assert np.abs(coefs["std_error"].to_numpy() - r["se"]).max() < 1e-6
    # R: greedy(predict(f), treated, 0.2 * sd(predict(f)), order(..., decreasing = TRUE))
    got = sorted(zip(pairs["treated_key"], pairs["control_key"], strict=True))
    assert got == sorted(zip(r["keys_t"], r["keys_c"], strict=True))
    assert 45 <= len(pairs) <= 55
    lev = balance[balance["kind"] == "level"]
    for v, level, sb, sa in lev[["variable", "level", "smd_before", "smd_after"]].itertuples(
        index=False
    ):
        rb, ra = r["lev"][f"{v}|{level}"]
        assert abs(sb - 100 * rb) < 1e-6 and abs(sa - 100 * ra) < 1e-6, (v, level)
    ov = balance[balance["kind"] == "overall"]
    for v, sb, sa in ov[["variable", "smd_before", "smd_after"]].itertuples(index=False):
        assert abs(sb - 100 * r["yd"][v][0]) < 1e-6 and abs(sa - 100 * r["yd"][v][1]) < 1e-6, v
