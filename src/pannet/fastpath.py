"""Vectorised per-replicate numerics of the bootstrap: many replicates in one array pass.

Every function here takes a batch of ``B`` replicates as the leading array axis and
computes, for all of them at once, what the main path computes for one data set:

- :func:`logistic_irls` - the propensity model, R ``glm.fit`` step for step
  (:func:`pannet.matching.fit_logistic`), with the resample given as case counts;
- :func:`greedy_match` - 1:1 greedy nearest-neighbour caliper matching without replacement,
  MatchIt semantics (:func:`pannet.matching.match_nearest_arrays`);
- :func:`survival_table`, :func:`km_surv`, :func:`km_median`, :func:`km_at`,
  :func:`km_rmst` - Kaplan-Meier curves, median (``quantile.survfit``), S(t) and the
  restricted mean (:mod:`pannet.km`);
- :func:`logrank` (R ``survdiff``) and :func:`cox_binary` (Cox model of a 0/1 covariate,
  Efron ties, R ``coxph``; :mod:`pannet.cox`).

Why it is fast: a bootstrap resample only re-weights the original patients, so the design
matrix, the distinct event times and their order are computed once; a replicate is a row
of counts. Survival quantities of a two-group comparison depend on the data only through
the numbers at risk and of events per group at each distinct time, which for all
replicates are one integer matrix product. The Cox model of a binary covariate needs only
those counts too. Python loops remain only over matching steps, Newton iterations and tied
deaths, never over replicates.

Batch invariance: replicate ``b`` of a batch gets bit-for-bit the result it gets in any
other batch. Only operations whose per-row result does not depend on the number of rows
are used: elementwise arithmetic, reductions and cumulative sums along a row, stacked
(``B x p x n``) matrix products and solves, and 2-D products of integer-valued matrices
(exact in floating point whatever the summation order).
"""

from __future__ import annotations

import math

import numpy as np

_DBL_EPS = np.finfo(float).eps
_THRESH = 30.0
QUANTILE_TOL = math.sqrt(_DBL_EPS)  # R quantile.survfit's default tolerance


def _rowsum(a: np.ndarray) -> np.ndarray:
    """Sum over the last axis in a fixed sequential order.

    ``np.sum`` may group the terms of a row differently depending on the array's other
    dimensions (pairwise summation and loop reordering), which would make a replicate's
    last bits depend on its batch; a cumulative sum adds strictly left to right.
    """
    if a.shape[-1] == 0:
        return np.zeros(a.shape[:-1])
    return np.cumsum(a, axis=-1)[..., -1]


# ---------------------------------------------------------------------------
# Propensity score
def _linkinv(eta):
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    mu = e / (1.0 + e)
    mu = np.where(eta < -_THRESH, _DBL_EPS, mu)
    return np.where(eta > _THRESH, (1.0 / _DBL_EPS) / (1.0 + 1.0 / _DBL_EPS), mu)


def inverse_logit(eta: np.ndarray) -> np.ndarray:
    """The propensity score from its logit, with R's ``binomial()$linkinv`` thresholds."""
    return _linkinv(eta)


def _mu_eta(eta):
    e = np.exp(np.clip(eta, -_THRESH, _THRESH))
    out = e / (1.0 + e) ** 2
    return np.where((eta > _THRESH) | (eta < -_THRESH), _DBL_EPS, out)


def _deviance(y, mu, counts):
    """Binomial deviance of 0/1 outcomes: -2 sum(count * log P(y))."""
    with np.errstate(divide="ignore"):
        return -2.0 * _rowsum(counts * np.log(np.where(y > 0, mu, 1.0 - mu)))


def linear_predictor(X: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """``X @ coef[b]`` for every replicate ``b`` (B x n), row-independent."""
    # stacked (B x n x p) @ (B x p x 1): one BLAS call per replicate, same shape each time
    return np.matmul(X[None, :, :], coef[:, :, None])[:, :, 0]


def logistic_irls(
    X: np.ndarray, y: np.ndarray, counts: np.ndarray, epsilon: float = 1e-8, maxit: int = 25
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic regression of ``y`` on ``X`` for many case-count vectors at once.

    Replicate ``b`` is the data set in which row ``i`` appears ``counts[b, i]`` times; the
    iterations are those of R's ``glm.fit`` on that data set with its rows duplicated
    (start ``mu = (y + 0.5) / 2`` per row, stop when ``|dev - dev_old| / (|dev| + 0.1) <
    epsilon``), as :func:`pannet.matching.fit_logistic` runs them. Columns of ``X`` that
    are zero in every counted row (levels absent from a resample) are held at 0, which is
    the main path's ``design_matrix(drop_empty=True)``.

    Parameters
    ----------
    X : ndarray (n, p)
        Design matrix with intercept.
    y : ndarray (n,)
        0/1 outcome.
    counts : ndarray (B, n)
        Non-negative integer case counts per replicate.

    Returns
    -------
    coef : ndarray (B, p)
        NaN for a replicate whose weighted design is rank deficient (the main path
        raises for it).
    eta : ndarray (B, n)
        The linear predictor (the logit of the propensity score) of every row.
    converged : ndarray of bool (B,)
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    c = np.asarray(counts, dtype=float)
    B, n = c.shape
    p = X.shape[1]
    present = (c @ (X != 0).astype(float)) > 0  # integer-valued product: exact
    absent = ~present
    mu = np.broadcast_to((y + 0.5) / 2.0, (B, n)).copy()
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance(y, mu, c)
    coef = np.zeros((B, p))
    done = np.zeros(B, dtype=bool)
    failed = np.zeros(B, dtype=bool)
    Xt = np.ascontiguousarray(X.T)
    eye = np.eye(p)
    for _ in range(maxit):
        act = np.flatnonzero(~done)
        if act.size == 0:
            break
        e_act = eta[act]
        me = _mu_eta(e_act)
        m = mu[act]
        z = e_act + (y - m) / me
        w = c[act] * (me * me / (m * (1 - m)))
        H = np.matmul(Xt[None, :, :] * w[:, None, :], X[None, :, :])
        rhs = np.matmul(Xt[None, :, :], (w * z)[:, :, None])[:, :, 0]
        ab = absent[act]
        if ab.any():
            H = np.where(ab[:, :, None] | ab[:, None, :], 0.0, H) + eye * ab[:, None, :]
            rhs = np.where(ab, 0.0, rhs)
        try:
            new = np.linalg.solve(H, rhs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            new = np.full_like(rhs, np.nan)
            for k in range(act.size):
                try:
                    new[k] = np.linalg.solve(H[k], rhs[k])
                except np.linalg.LinAlgError:
                    failed[act[k]] = True
        coef[act] = new
        eta[act] = linear_predictor(X, new)
        mu[act] = _linkinv(eta[act])
        dev = _deviance(y, mu[act], c[act])
        conv = np.abs(dev - dev_old[act]) / (np.abs(dev) + 0.1) < epsilon
        dev_old[act] = dev
        done[act[conv]] = True
        done[failed] = True
    coef[failed] = np.nan
    eta[failed] = np.nan
    return coef, eta, done & ~failed


# ---------------------------------------------------------------------------
# Matching
def caliper_width(dist: np.ndarray, present: np.ndarray, caliper, std_caliper: bool) -> np.ndarray:
    """Caliper per replicate: ``caliper * sd(distance over present units)`` (n - 1)."""
    B = dist.shape[0]
    if caliper is None:
        return np.full(B, np.inf)
    if not std_caliper:
        return np.full(B, float(caliper))
    k = present.sum(axis=1)
    dz = np.where(present, dist, 0.0)
    mean = _rowsum(dz) / k
    ss = _rowsum(np.where(present, (dist - mean[:, None]) ** 2, 0.0))
    return caliper * np.sqrt(ss / (k - 1))


def greedy_match(
    dist: np.ndarray,
    treated: np.ndarray,
    present: np.ndarray | None = None,
    caliper: float | None = 0.2,
    std_caliper: bool = True,
    order: str = "largest",
) -> np.ndarray:
    """1:1 greedy nearest-neighbour matching without replacement, for each replicate.

    Units are the columns, in data order. Treated units choose in ``order``
    (``largest``/``smallest`` distance first, ties in data order; ``data``); each takes
    the nearest unused control within the caliper, ties going to the control first in
    data order - MatchIt's general routine, as :func:`pannet.matching.match_nearest_arrays`.

    Parameters
    ----------
    dist : ndarray (B, L)
        Distance (logit of the propensity score, or the score) per unit.
    treated : ndarray of bool (B, L)
    present : ndarray of bool (B, L), optional
        Units taking part (a jackknife sample leaves one out); default all.

    Returns
    -------
    partner : ndarray of int (B, L)
        For a matched treated unit the column of its control, else -1.
    """
    B, L = dist.shape
    treated = np.asarray(treated, dtype=bool)
    present = np.ones((B, L), dtype=bool) if present is None else np.asarray(present, bool)
    cal = caliper_width(dist, present, caliper, std_caliper)
    tp = treated & present
    if order == "largest":
        key = np.where(tp, -dist, np.inf)
    elif order == "smallest":
        key = np.where(tp, dist, np.inf)
    elif order == "data":
        key = np.where(tp, np.arange(L, dtype=float)[None, :], np.inf)
    else:
        raise ValueError(
            f"fast path matching order must be largest, smallest or data; got {order!r}"
        )
    seq = np.argsort(key, axis=1, kind="stable")
    n_treated = tp.sum(axis=1)
    avail = ~treated & present
    partner = np.full((B, L), -1, dtype=np.int64)
    rows = np.arange(B)
    for k in range(int(n_treated.max(initial=0))):
        act = k < n_treated
        tk = seq[:, k]
        x = dist[rows, tk]
        diff = np.where(avail, np.abs(dist - x[:, None]), np.inf)
        j = np.argmin(diff, axis=1)
        dj = diff[rows, j]
        ok = act & (dj <= cal) & (dj < np.inf)  # inf: no free control left
        partner[rows[ok], tk[ok]] = j[ok]
        avail[rows[ok], j[ok]] = False
    return partner


def matched_counts(partner: np.ndarray, idx: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Case counts of the matched sample per original row, and the number of pairs.

    ``idx[b, u]`` is the original row of unit ``u`` of replicate ``b``.
    """
    B, _ = partner.shape
    is_t = partner >= 0
    rows = np.nonzero(is_t)
    units = np.concatenate([idx[rows], idx[rows[0], partner[rows]]])
    reps = np.concatenate([rows[0], rows[0]])
    counts = np.bincount(reps * n + units, minlength=B * n).reshape(B, n)
    return counts, is_t.sum(axis=1)


# ---------------------------------------------------------------------------
# Survival
class SurvivalTable:
    """Numbers at risk and events per group at each distinct time, for every replicate.

    Attributes ``grid`` (T,), and (B, T) arrays ``obs`` / ``events`` / ``at_risk`` indexed
    ``[g]`` for group ``g`` in (0, 1), plus ``last`` (B,) per group: the last observed time.
    """

    def __init__(self, counts, time, event, group):
        time = np.asarray(time, dtype=float)
        event = np.asarray(event, dtype=float)
        group = np.asarray(group).astype(bool)
        c = np.asarray(counts, dtype=float)
        self.grid, pos = np.unique(time, return_inverse=True)
        T = self.grid.size
        B = c.shape[0]
        self.obs, self.events, self.at_risk, self.last = [], [], [], []
        for g in (False, True):
            cols = np.flatnonzero(group == g)
            # bin (replicate, time) of every counted row; integer-valued sums: exact
            bins = (np.arange(B)[:, None] * T + pos[cols][None, :]).ravel()
            cg = c[:, cols]
            obs = np.bincount(bins, weights=cg.ravel(), minlength=B * T).reshape(B, T)
            ev = np.bincount(
                bins, weights=(cg * event[cols][None, :]).ravel(), minlength=B * T
            ).reshape(B, T)
            self.obs.append(obs)
            self.events.append(ev)
            self.at_risk.append(np.cumsum(obs[:, ::-1], axis=1)[:, ::-1])
            has = obs > 0
            lastpos = T - 1 - np.argmax(has[:, ::-1], axis=1)
            self.last.append(np.where(has.any(axis=1), self.grid[lastpos], np.nan))


def survival_table(counts, time, event, group) -> SurvivalTable:
    """Build the :class:`SurvivalTable` of a batch of case-count vectors."""
    return SurvivalTable(counts, time, event, group)


def km_surv(n_risk: np.ndarray, n_event: np.ndarray) -> np.ndarray:
    """Kaplan-Meier S(t) on the grid: product of (1 - d/n) (factor 1 where nobody is at risk)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(n_risk > 0, 1.0 - n_event / n_risk, 1.0)
    return np.cumprod(f, axis=1)


def km_median(grid, surv, last, p: float = 0.5, tol: float = QUANTILE_TOL) -> np.ndarray:
    """The p-quantile of survival time as R ``quantile.survfit`` (``survival:::findq``).

    The first time the curve reaches ``1 - p``, or the midpoint of the stretch over which
    it sits within ``tol`` of it (the midpoint with the last observed time when the curve
    ends there); NaN when the curve never reaches it.
    """
    F = 1.0 - surv
    c1 = F + tol >= p
    c2 = F - tol >= p
    has1, has2 = c1.any(axis=1), c2.any(axis=1)
    t1 = grid[np.argmax(c1, axis=1)]
    t2 = grid[np.argmax(c2, axis=1)]
    q = np.where(has1 & has2, (t1 + t2) / 2, np.nan)
    f_last = F[:, -1]
    q = np.where((np.abs(p - f_last) < tol) & has1, (t1 + last) / 2, q)
    return np.where(f_last < p, np.nan, q)


def km_at(grid, surv, last, t: float) -> np.ndarray:
    """S(t): the step value at the last time <= t; NaN beyond the last observed time."""
    j = np.searchsorted(grid, t, side="right") - 1
    s = surv[:, j] if j >= 0 else np.ones(surv.shape[0])
    return np.where(t <= last, s, np.nan)  # also NaN for a group with no one (last NaN)


def km_rmst(grid, surv, tau: float) -> np.ndarray:
    """Restricted mean survival time: the area under S from 0 to ``tau``."""
    keep = grid <= tau
    g = grid[keep]
    edges = np.concatenate([[0.0], g, [tau]])
    s_prev = np.concatenate([np.ones((surv.shape[0], 1)), surv[:, keep]], axis=1)
    return _rowsum(np.diff(edges)[None, :] * s_prev)


def logrank(tab: SurvivalTable) -> np.ndarray:
    """Two-group log-rank chi-square (R ``survdiff``, rho = 0)."""
    n0, n1 = tab.at_risk
    d0, d1 = tab.events
    n = n0 + n1
    d = d0 + d1
    with np.errstate(divide="ignore", invalid="ignore"):
        e1 = np.where(d > 0, d * n1 / n, 0.0)
        f = np.where((d > 0) & (n > 1), d * (n - d) / (n * n * (n - 1)), 0.0)
    v = _rowsum(f * n * n1) - _rowsum(f * n1 * n1)
    oe = _rowsum(d1) - _rowsum(e1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return oe * oe / v


class _Deaths:
    """The tied-death terms of Efron's partial likelihood, flattened over replicates.

    One entry per (replicate b, event time t, k < d[b, t]); per-replicate sums are
    ``np.bincount`` over ``b``, which adds each replicate's entries in the same order
    whatever else is in the batch.
    """

    def __init__(self, tab: SurvivalTable):
        n0, n1 = tab.at_risk
        d0, d1 = tab.events
        d = (d0 + d1).astype(np.int64)
        self.B = d.shape[0]
        b, t = np.nonzero(d)
        dd = d[b, t]
        rep = np.repeat(np.arange(b.size), dd)
        k = np.arange(rep.size) - np.repeat(np.cumsum(dd) - dd, dd)
        self.b = b[rep]
        frac = k / dd[rep]
        self.n0, self.n1 = n0[b, t][rep], n1[b, t][rep]
        self.fd0, self.fd1 = frac * d0[b, t][rep], frac * d1[b, t][rep]
        self.d1 = np.bincount(b, weights=d1[b, t], minlength=self.B)

    def sums(self, beta: np.ndarray):
        """Log partial likelihood, score and information at ``beta`` (B,)."""
        r = np.exp(beta)[self.b]
        a1 = r * (self.n1 - self.fd1)
        a = a1 + (self.n0 - self.fd0)
        q = a1 / a
        B = self.B
        ll = beta * self.d1 - np.bincount(self.b, weights=np.log(a), minlength=B)
        U = self.d1 - np.bincount(self.b, weights=q, minlength=B)
        info = np.bincount(self.b, weights=q - q * q, minlength=B)
        return ll, U, info


def cox_binary(tab: SurvivalTable, max_iter: int = 50, tol: float = 1e-12) -> np.ndarray:
    """Cox log hazard ratio of group 1 vs 0, Efron ties, Newton with step halving.

    With one binary covariate the risk-set sums at a death time are ``n1 e^b + n0`` and
    the tied deaths' ``d1 e^b + d0``; Efron's k-th term subtracts ``k/d`` of the latter.
    Converges as :func:`pannet.cox.cox` (``|step| < tol (1 + |beta|)``); NaN where it does
    not (an infinite estimate: no events in a group).
    """
    deaths = _Deaths(tab)
    B = deaths.B
    beta = np.zeros(B)
    ll, U, info = deaths.sums(beta)
    done = np.zeros(B, dtype=bool)
    for _ in range(max_iter):
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(done, 0.0, U / info)
        new = beta + step
        ll_n, U_n, info_n = deaths.sums(new)
        for _h in range(30):
            worse = ~done & (ll_n < ll - 1e-12)
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
            new = beta + step
            ll_h, U_h, info_h = deaths.sums(new)
            ll_n = np.where(worse, ll_h, ll_n)
            U_n = np.where(worse, U_h, U_n)
            info_n = np.where(worse, info_h, info_n)
        upd = ~done
        beta = np.where(upd, new, beta)
        ll = np.where(upd, ll_n, ll)
        U = np.where(upd, U_n, U)
        info = np.where(upd, info_n, info)
        done |= ~(np.abs(step) >= tol * (1 + np.abs(beta)))
        if done.all():
            break
    bad = ~done | ~np.isfinite(beta) | ~(info > 0)
    return np.where(bad, np.nan, beta)


# ---------------------------------------------------------------------------
# The effect estimates of one batch
ESTIMATES = ("log_hr", "hr", "median_diff", "survival_diff", "rmst_diff", "n_pairs")


def effect_estimates(counts, time, event, treated, n_pairs, horizon: float, tau: float) -> dict:
    """Matched effect estimates (treated minus control) for each case-count vector.

    Returns a dict of (B,) arrays named as :data:`ESTIMATES`: Cox log hazard ratio and
    hazard ratio (Efron), difference in median survival, in survival at ``horizon`` and
    in restricted mean survival to ``tau``, and the number of matched pairs.
    """
    tab = survival_table(counts, time, event, treated)
    s = [km_surv(tab.at_risk[g], tab.events[g]) for g in (0, 1)]
    med = [km_median(tab.grid, s[g], tab.last[g]) for g in (0, 1)]
    at = [km_at(tab.grid, s[g], tab.last[g], horizon) for g in (0, 1)]
    rm = [km_rmst(tab.grid, s[g], tau) for g in (0, 1)]
    log_hr = cox_binary(tab)
    return {
        "log_hr": log_hr,
        "hr": np.exp(log_hr),
        "median_diff": med[1] - med[0],
        "survival_diff": at[1] - at[0],
        "rmst_diff": rm[1] - rm[0],
        "n_pairs": np.asarray(n_pairs, dtype=float),
    }
