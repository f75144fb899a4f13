"""Kaplan-Meier estimation exactly as R's ``survival`` package (3.5) computes it.

Pure numpy, no pandas, no lifelines: these functions are the reference the bootstrap's
vectorised fast path is checked against, and each Snakemake job pays no heavy import.

What R does, and so what is done here (every rule quoted from survival 3.5-3 source):

- ``survfit`` step table: one row per distinct observed time (events and censorings),
  ``n.risk`` = number with time >= t, ``surv`` = product of (1 - d/n).
- ``survfit(...)$std.err`` is the Greenwood standard error of the *cumulative hazard*
  (= of log S): sqrt(cumsum(d / (n (n - d)))), infinite once S reaches 0.
  ``summary.survfit`` reports ``std.err * surv``, the standard error of S itself. The
  step table here carries both: ``std_err_log`` (R's ``$std.err``) and ``std_err`` (the
  ``summary`` column).
- Confidence limits: ``survival:::survfit_confint`` with ``logse = TRUE``: plain
  (S +- z se(S), clipped to [0, 1]), log (exp(log S +- z se), upper clipped at 1;
  R's default), log-log (exp(-exp(log(-log S) -+ z se / log S)); undefined at S = 1).
- Quantiles: ``quantile.survfit`` via ``survival:::findq``: the p-quantile is the first
  time the curve reaches 1 - p, except that when the curve sits within ``tol`` of 1 - p
  over a stretch, it is the midpoint of that stretch (R's ``veteran`` trt 2: median 52.5);
  its confidence limits apply the same rule to the lower and upper confidence curves.
- Restricted mean to ``tau``: ``survival:::survmean`` (what ``print(fit, rmean = tau)``
  shows), area under S up to tau with variance sum_i A_i^2 d_i / (n_i (n_i - d_i)), A_i
  the area from the i-th time to tau.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

CONF_TYPES = ("plain", "log", "log-log")
# R's default tolerance of quantile.survfit: sqrt(.Machine$double.eps)
QUANTILE_TOL = math.sqrt(np.finfo(float).eps)


def _as_arrays(time, event) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(time, dtype=float)
    e = np.asarray(event)
    if t.ndim != 1 or e.shape != t.shape:
        raise ValueError(f"time and event must be 1-D of equal length; got {t.shape} and {e.shape}")
    if t.size == 0:
        raise ValueError("no observations")
    if not np.all(np.isfinite(t)):
        bad = np.flatnonzero(~np.isfinite(t))[:5].tolist()
        raise ValueError(f"time has missing or infinite values at rows {bad}")
    if np.any(t < 0):
        bad = np.flatnonzero(t < 0)[:5].tolist()
        raise ValueError(f"time has negative values at rows {bad}")
    e = e.astype(float)
    if not np.all(np.isin(e, (0.0, 1.0))):
        bad = np.flatnonzero(~np.isin(e, (0.0, 1.0)))[:5].tolist()
        raise ValueError(f"event must be 0/1 (or boolean); rows {bad} are not")
    return t, e


def km_steps(time, event) -> dict[str, np.ndarray]:
    """The Kaplan-Meier step table (R ``survfit``), one row per distinct time.

    Returns
    -------
    dict of arrays
        ``time, n_risk, n_event, n_censor, surv, std_err_log`` (R's ``$std.err``,
        Greenwood SE of -log S) and ``std_err`` (SE of S, as ``summary.survfit``).
    """
    t, e = _as_arrays(time, event)
    ut, inv = np.unique(t, return_inverse=True)
    n_at = np.bincount(inv, minlength=ut.size).astype(float)
    d = np.bincount(inv, weights=e, minlength=ut.size)
    n_risk = np.cumsum(n_at[::-1])[::-1]
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        inc = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
    # n == d gives an infinite increment (S drops to 0), as in R
    inc = np.where((d > 0) & (n_risk == d), np.inf, inc)
    std_err_log = np.sqrt(np.cumsum(inc))
    with np.errstate(invalid="ignore"):
        std_err = np.where(np.isinf(std_err_log) & (surv == 0), np.nan, std_err_log * surv)
    return {
        "time": ut,
        "n_risk": n_risk,
        "n_event": d,
        "n_censor": n_at - d,
        "surv": surv,
        "std_err_log": std_err_log,
        "std_err": std_err,
    }


def z_value(conf_level: float) -> float:
    """Two-sided normal quantile, ``qnorm(1 - (1 - conf_level) / 2)``."""
    if not 0 < conf_level < 1:
        raise ValueError(f"conf_level must be in (0, 1); got {conf_level}")
    return NormalDist().inv_cdf(1 - (1 - conf_level) / 2)


def conf_limits(
    surv, std_err_log, conf_type: str = "log", conf_level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise confidence limits of S, as ``survival:::survfit_confint`` (logse = TRUE).

    Undefined limits (S = 0; S = 1 for log-log; infinite SE) are NaN where R gives NA.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}; got {conf_type!r}")
    p = np.asarray(surv, dtype=float)
    se = np.asarray(std_err_log, dtype=float)
    z = z_value(conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            se2 = se * p * z
            lower = np.maximum(p - se2, 0.0)
            upper = np.minimum(p + se2, 1.0)
            bad = np.isnan(se2)
            lower[bad] = np.nan
            upper[bad] = np.nan
        elif conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            se2 = z * se
            lower = np.exp(np.log(xx) - se2)
            upper = np.minimum(np.exp(np.log(xx) + se2), 1.0)
            upper[np.isnan(xx) | np.isnan(se2)] = np.nan
        else:
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            se2 = z * se / np.log(xx)
            lower = np.exp(-np.exp(np.log(-np.log(xx)) - se2))
            upper = np.exp(-np.exp(np.log(-np.log(xx)) + se2))
    return lower, upper


def _duplicated(y: np.ndarray) -> np.ndarray:
    """R's ``duplicated``: later repeats of a value (NaN equals NaN) are True."""
    dup = np.zeros(y.size, dtype=bool)
    seen: set = set()
    seen_nan = False
    for i, v in enumerate(y.tolist()):
        if v != v:  # NaN
            dup[i] = seen_nan
            seen_nan = True
        else:
            dup[i] = v in seen
            seen.add(v)
    return dup


def _approx_index(xs: np.ndarray, idx: np.ndarray, p: np.ndarray) -> np.ndarray:
    """``approx(xs, idx, p, method = "constant", f = 1)$y`` (xs increasing, NA pairs dropped)."""
    out = np.full(p.shape, np.nan)
    if xs.size == 0:
        return out
    inside = (p >= xs[0]) & (p <= xs[-1])
    pos = np.searchsorted(xs, p[inside], side="left")
    out[inside] = idx[pos]
    return out


def findq(x, y, probs, tol: float = QUANTILE_TOL) -> np.ndarray:
    """``survival:::findq``: quantiles of the distribution ``y`` (= 1 - S) over times ``x``."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    p = np.atleast_1d(np.asarray(probs, dtype=float))
    if np.all(np.isnan(y)) or np.nanmax(y) < p.min():
        return np.full(p.shape, np.nan)
    xmax = x[-1]
    keep = ~_duplicated(y)
    x, y = x[keep], y[keep]
    n = y.size
    ok = ~np.isnan(y)
    pos = np.arange(n, dtype=float)[ok]  # 0-based positions standing in for R's 1:n
    i1 = _approx_index(y[ok] + tol, pos, p)
    i2 = _approx_index(y[ok] - tol, pos, p)

    def take(i):
        out = np.full(i.shape, np.nan)
        good = ~np.isnan(i)
        out[good] = x[i[good].astype(int)]
        return out

    quant = (take(i1) + take(i2)) / 2
    quant[p == 0] = x[0]
    if not np.isnan(y[n - 1]):
        last = np.abs(p - y[n - 1]) < tol
        if np.any(last):
            quant[last] = (take(i1[last]) + xmax) / 2
    return quant


def km_quantiles(
    steps: dict[str, np.ndarray],
    probs=(0.25, 0.5, 0.75),
    lower=None,
    upper=None,
    tol: float = QUANTILE_TOL,
) -> dict[str, np.ndarray]:
    """``quantile(survfit, probs)``: estimate and, given the confidence curves, limits.

    The lower limit of a quantile comes from the lower confidence curve of S (it reaches
    1 - p first), the upper limit from the upper curve, as in ``survival:::doquant``.
    Time origin is 0 (``firstx``), as for an ordinary right-censored ``survfit``.
    """
    x = np.concatenate([[0.0], steps["time"]])
    out = {"est": findq(x, np.concatenate([[0.0], 1 - steps["surv"]]), probs, tol)}
    if lower is not None and upper is not None:
        out["lower"] = findq(x, np.concatenate([[0.0], 1 - np.asarray(lower)]), probs, tol)
        out["upper"] = findq(x, np.concatenate([[0.0], 1 - np.asarray(upper)]), probs, tol)
    return out


def km_at(steps: dict[str, np.ndarray], times, conf_type="log", conf_level=0.95) -> dict:
    """S(t) at given times, as ``summary(survfit, times = t)``: the step value at the last
    time <= t; NaN beyond the last observed time (R drops those times unless
    ``extend = TRUE``)."""
    t = np.atleast_1d(np.asarray(times, dtype=float))
    idx = np.searchsorted(steps["time"], t, side="right") - 1
    before = idx < 0
    beyond = t > steps["time"][-1]
    j = np.clip(idx, 0, None)
    surv = np.where(before, 1.0, steps["surv"][j])
    se_log = np.where(before, 0.0, steps["std_err_log"][j])
    n_risk = np.concatenate([steps["n_risk"], [0.0]])[
        np.searchsorted(steps["time"], t, side="left")
    ]
    lower, upper = conf_limits(surv, se_log, conf_type, conf_level)
    # before the first time R reads survfit0's prepended origin row: S = lower = upper = 1
    lower[before] = 1.0
    upper[before] = 1.0
    with np.errstate(invalid="ignore"):
        se = np.where(np.isinf(se_log) & (surv == 0), np.nan, se_log * surv)
    res = {"time": t, "n_risk": n_risk, "est": surv, "se": se, "lower": lower, "upper": upper}
    for k in ("n_risk", "est", "se", "lower", "upper"):
        res[k] = np.where(beyond, np.nan, res[k])
    return res


def km_rmst(steps: dict[str, np.ndarray], tau: float) -> tuple[float, float]:
    """Restricted mean survival time to ``tau`` and its SE (``survival:::survmean``)."""
    time, surv = steps["time"], steps["surv"]
    n, d = steps["n_risk"], steps["n_event"]
    tau = float(tau)
    if tau < min(0.0, time.min()):
        raise ValueError(f"rmst tau {tau} is before the time origin")
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n - d == 0, 0.0, d / (n * (n - d)))
    keep = np.flatnonzero(time <= tau)
    if keep.size == 0:
        return tau, 0.0
    ttime = np.concatenate([time[keep], [tau]])
    tsurv = np.concatenate([surv[keep], [surv[keep[-1]]]])
    hh = np.concatenate([hh[keep], [0.0]])
    delta = np.diff(np.concatenate([[0.0], ttime]))
    rect = delta * np.concatenate([[1.0], tsurv[:-1]])
    var = float(np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:]))
    return float(np.sum(rect)), math.sqrt(var)
