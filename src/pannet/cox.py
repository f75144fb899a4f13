"""Log-rank test and Cox proportional hazards, as R ``survdiff`` and ``coxph`` compute them.

Pure numpy. The Cox fit is Newton-Raphson on the partial likelihood with Efron's (R's
default) or Breslow's handling of ties, iterated to convergence; the robust variance is
R's: the score residuals (Efron-weighted for tied deaths, as ``survival``'s
``coxscore2``), times the model variance (``residuals(fit, "dfbeta")``), summed within
clusters, then D'D - with no small-sample factor, as ``coxph(..., cluster = id)``.
lifelines is not used: its robust variance under Efron ties differs from R's.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

TIES = ("efron", "breslow")


def _chisq_sf(x: float, df: int) -> float:
    if df == 1:
        return math.erfc(math.sqrt(max(x, 0.0) / 2))
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


def _norm_sf2(z: float) -> float:
    """Two-sided normal p-value."""
    return math.erfc(abs(z) / math.sqrt(2))


def logrank(time, event, group) -> dict:
    """Log-rank test of equal survival across groups (R ``survdiff``, rho = 0).

    Returns
    -------
    dict
        ``chisq, df, p`` and per group (sorted labels) ``groups, n, observed, expected``.
    """
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    g = np.asarray(group)
    labels, gi = np.unique(g, return_inverse=True)
    k = labels.size
    if k < 2:
        raise ValueError(f"logrank needs at least two groups; got {labels.tolist()}")
    ut, ti = np.unique(t, return_inverse=True)
    m = ut.size
    # counts per (time, group)
    at = np.zeros((m, k))
    np.add.at(at, (ti, gi), 1.0)
    dd = np.zeros((m, k))
    np.add.at(dd, (ti, gi), e)
    n_g = np.cumsum(at[::-1], axis=0)[::-1]  # at risk per group
    n = n_g.sum(axis=1)
    d = dd.sum(axis=1)
    ev = d > 0
    n_g, n, d, dd = n_g[ev], n[ev], d[ev], dd[ev]
    expected = (d[:, None] * n_g / n[:, None]).sum(axis=0)
    observed = dd.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(n > 1, d * (n - d) / (n * n * (n - 1)), 0.0)
    # V_jk = sum_t d (n - d) / (n^2 (n - 1)) * (n n_j [j == k] - n_j n_k)
    var = -np.einsum("t,tj,tk->jk", f, n_g, n_g)
    var[np.diag_indices(k)] += (f[:, None] * n[:, None] * n_g).sum(axis=0)
    oe = (observed - expected)[1:]
    v = var[1:, 1:]
    chisq = float(oe @ np.linalg.solve(v, oe)) if k > 2 else float(oe[0] ** 2 / v[0, 0])
    df = k - 1
    return {
        "chisq": chisq,
        "df": df,
        "p": _chisq_sf(chisq, df),
        "groups": labels.tolist(),
        "n": np.bincount(gi, minlength=k).tolist(),
        "observed": observed.tolist(),
        "expected": expected.tolist(),
    }


def _design(x) -> np.ndarray:
    X = np.asarray(x, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"covariates must be 1-D or 2-D; got shape {X.shape}")
    return X


class _Risk:
    """Sorted data and the tie structure of a right-censored sample."""

    def __init__(self, t, e, X):
        order = np.lexsort((-e, t))  # by time; deaths first within a time (irrelevant to sums)
        self.order = order
        self.t, self.e, self.X = t[order], e[order], X[order]
        ut, first = np.unique(self.t, return_index=True)
        self.first = first  # first row of each distinct time; risk set = rows >= first
        self.tidx = np.repeat(np.arange(ut.size), np.diff(np.append(first, self.t.size)))
        dcount = np.bincount(self.tidx, weights=self.e, minlength=ut.size)
        self.event_times = np.flatnonzero(dcount > 0)
        self.d = dcount[self.event_times].astype(int)


def _sums(rk: _Risk, beta: np.ndarray, ties: str):
    """Log partial likelihood, score, information and per-event-time pieces."""
    X, e = rk.X, rk.e
    p = X.shape[1]
    xb = X @ beta
    r = np.exp(xb)
    # reverse cumulative sums give the risk-set sums at each row
    S0r = np.cumsum(r[::-1])[::-1]
    S1r = np.cumsum((r[:, None] * X)[::-1], axis=0)[::-1]
    S2r = np.cumsum((r[:, None, None] * X[:, :, None] * X[:, None, :])[::-1], axis=0)[::-1]
    loglik = 0.0
    U = np.zeros(p)
    info = np.zeros((p, p))
    pieces = []
    for j, d in zip(rk.event_times, rk.d, strict=True):
        start = rk.first[j]
        rows = np.flatnonzero((rk.tidx == j) & (e == 1))
        S0, S1, S2 = S0r[start], S1r[start], S2r[start]
        D0 = r[rows].sum()
        D1 = (r[rows, None] * X[rows]).sum(axis=0)
        D2 = (r[rows, None, None] * X[rows, :, None] * X[rows, None, :]).sum(axis=0)
        loglik += xb[rows].sum()
        U += X[rows].sum(axis=0)
        a = np.arange(d) / d if ties == "efron" else np.zeros(d)
        den = S0 - a * D0
        mu = (S1[None, :] - a[:, None] * D1[None, :]) / den[:, None]
        loglik -= np.log(den).sum()
        U -= mu.sum(axis=0)
        info += ((S2[None] - a[:, None, None] * D2[None]) / den[:, None, None]).sum(axis=0)
        info -= np.einsum("ki,kj->ij", mu, mu)
        pieces.append((start, rows, a, den, mu))
    return loglik, U, info, pieces, r


def _score_residuals(rk: _Risk, beta, ties) -> np.ndarray:
    """Per-subject score residuals (sorted order), Efron-weighted as R's coxscore2."""
    _, _, _, pieces, r = _sums(rk, beta, ties)
    X = rk.X
    n, p = X.shape
    resid = np.zeros((n, p))
    for start, rows, a, den, mu in pieces:
        dh = 1.0 / den  # hazard increment per unit risk at each Efron sub-step
        # everyone at risk (rows >= start) carries the full compensator ...
        h = dh.sum()
        hx = (dh[:, None] * mu).sum(axis=0)
        risk = slice(start, n)
        resid[risk] -= r[risk, None] * (X[risk] * h - hx[None, :])
        # ... except the tied deaths, whose risk weight at sub-step k is (1 - k/d)
        w = 1.0 - a
        h_d = (w * dh).sum()
        hx_d = ((w * dh)[:, None] * mu).sum(axis=0)
        resid[rows] += r[rows, None] * (X[rows] * h - hx[None, :])
        resid[rows] -= r[rows, None] * (X[rows] * h_d - hx_d[None, :])
        resid[rows] += X[rows] - mu.mean(axis=0)[None, :]
    return resid


def cox(
    time,
    event,
    x,
    cluster=None,
    ties: str = "efron",
    robust: bool | None = None,
    conf_level: float = 0.95,
    max_iter: int = 50,
    tol: float = 1e-12,
) -> dict:
    """Cox proportional hazards fit (R ``coxph``), with model-based and robust SE.

    Parameters
    ----------
    time, event : array-like
        Follow-up time and 0/1 event indicator.
    x : array-like, 1-D (one covariate, e.g. the 0/1 treatment) or 2-D (n x p)
    cluster : array-like, optional
        Cluster id per row (e.g. the matched pair); the robust variance sums the
        dfbeta residuals within clusters, as ``coxph(..., cluster = pair)``. Without it,
        each row is its own cluster (``robust = TRUE``).
    ties : {"efron", "breslow"}
    robust : bool, optional
        Base z, p and the CI on the robust SE (R: ``robust = TRUE`` or any
        ``cluster``); default: when ``cluster`` is given. ``robust_se`` is always returned.
    conf_level : float
        Level of the hazard ratio interval (Wald).

    Returns
    -------
    dict
        Arrays over covariates: ``coef, se`` (model-based), ``robust_se, z, p, hr,
        hr_lower, hr_upper`` (z, p and CI on the robust SE when ``robust``, else the
        model SE, as R's summary), and ``loglik`` (at 0 and at the fit),
        ``n, events, n_clusters, iterations``.
    """
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}; got {ties!r}")
    t = np.asarray(time, dtype=float)
    e = np.asarray(event, dtype=float)
    X = _design(x)
    if not (t.shape[0] == e.shape[0] == X.shape[0]):
        raise ValueError("time, event and x must have the same number of rows")
    rk = _Risk(t, e, X)
    p = X.shape[1]
    beta = np.zeros(p)
    ll0, U, info, _, _ = _sums(rk, beta, ties)
    ll = ll0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        step = np.linalg.solve(info, U)
        new = beta + step
        ll_new, U_new, info_new, _, _ = _sums(rk, new, ties)
        halvings = 0
        while ll_new < ll - 1e-12 and halvings < 30:  # step-halving, as coxph does
            step /= 2
            new = beta + step
            ll_new, U_new, info_new, _, _ = _sums(rk, new, ties)
            halvings += 1
        beta, ll, U, info = new, ll_new, U_new, info_new
        if np.max(np.abs(step)) < tol * (1 + np.max(np.abs(beta))):
            break
    else:
        raise RuntimeError(f"cox: no convergence in {max_iter} iterations (coef {beta})")
    var = np.linalg.inv(info)
    se = np.sqrt(np.diag(var))
    resid = _score_residuals(rk, beta, ties) @ var  # dfbeta, sorted order
    if cluster is None:
        groups = np.arange(t.size)[rk.order]
    else:
        c = np.asarray(cluster)
        if c.shape[0] != t.shape[0]:
            raise ValueError("cluster must have one value per row")
        _, groups = np.unique(c[rk.order], return_inverse=True)
    ng = int(groups.max()) + 1
    D = np.zeros((ng, p))
    np.add.at(D, groups, resid)
    rvar = D.T @ D
    robust_se = np.sqrt(np.diag(rvar))
    if robust is None:
        robust = cluster is not None
    use = robust_se if robust else se
    z = beta / use
    zq = NormalDist().inv_cdf(1 - (1 - conf_level) / 2)
    return {
        "coef": beta,
        "se": se,
        "robust_se": robust_se,
        "z": z,
        "p": np.array([_norm_sf2(v) for v in z]),
        "hr": np.exp(beta),
        "hr_lower": np.exp(beta - zq * use),
        "hr_upper": np.exp(beta + zq * use),
        "var": var,
        "robust_var": rvar,
        "loglik": (ll0, ll),
        "n": int(t.size),
        "events": int(e.sum()),
        "n_clusters": ng,
        "iterations": iterations,
        "ties": ties,
        "clustered": cluster is not None,
        "robust": bool(robust),
    }
