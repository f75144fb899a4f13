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
        order = np.lexsort(
            (-e, t)
        )  # by time, deaths first within a time: tied deaths are contiguous
        self.order = order
        self.t, self.e, self.X = t[order], e[order], X[order]
        ut, first = np.unique(self.t, return_index=True)
        self.first = first  # first row of each distinct time; risk set = rows >= first
        self.tidx = np.repeat(np.arange(ut.size), np.diff(np.append(first, self.t.size)))
        dcount = np.bincount(self.tidx, weights=self.e, minlength=ut.size)
        self.event_times = np.flatnonzero(dcount > 0)
        self.d = dcount[self.event_times].astype(int)
        self.death_rows = [
            np.arange(self.first[j], self.first[j] + d)
            for j, d in zip(self.event_times, self.d, strict=True)
        ]


def _sums(rk: _Risk, beta: np.ndarray, ties: str):
    """Log partial likelihood, score, information, and per Efron sub-step pieces.

    Vectorised over event times and their Efron sub-steps (k = 0..d-1 of a tie of d
    deaths): risk-set sums come from reverse cumulative sums at the first row of each
    time, tied-death sums from forward cumulative sums over the contiguous death rows.
    """
    X = rk.X
    n, p = X.shape
    xb = X @ beta
    r = np.exp(xb)
    rX = r[:, None] * X
    rXX = rX[:, :, None] * X[:, None, :]
    starts = rk.first[rk.event_times]
    d = rk.d
    S0 = np.cumsum(r[::-1])[::-1][starts]
    S1 = np.cumsum(rX[::-1], axis=0)[::-1][starts]
    S2 = np.cumsum(rXX[::-1], axis=0)[::-1][starts]

    def tie_sum(v):
        c = np.concatenate([np.zeros((1, *v.shape[1:])), np.cumsum(v, axis=0)])
        return c[starts + d] - c[starts]

    D0, D1, D2 = tie_sum(r), tie_sum(rX), tie_sum(rXX)
    jj = np.repeat(np.arange(starts.size), d)  # event time of each sub-step
    k = np.arange(jj.size) - np.repeat(np.cumsum(d) - d, d)
    a = k / d[jj] if ties == "efron" else np.zeros(jj.size)
    den = S0[jj] - a * D0[jj]
    mu = (S1[jj] - a[:, None] * D1[jj]) / den[:, None]
    deaths = np.concatenate(rk.death_rows) if rk.death_rows else np.zeros(0, int)
    loglik = float(xb[deaths].sum() - np.log(den).sum())
    U = X[deaths].sum(axis=0) - mu.sum(axis=0)
    info = ((S2[jj] - a[:, None, None] * D2[jj]) / den[:, None, None]).sum(axis=0)
    info -= mu.T @ mu
    return loglik, U, info, (starts, jj, a, den, mu, deaths), r


def _score_residuals(rk: _Risk, beta, ties) -> np.ndarray:
    """Per-subject score residuals (sorted order), Efron-weighted as R's coxscore2.

    Everyone at risk at an event time carries the full compensator
    r_i sum_k (x_i - mu_k) / den_k, except the tied deaths, whose risk weight at
    sub-step k is (1 - k/d); each death adds x_i - mean_k(mu_k).
    """
    _, _, _, (starts, jj, a, den, mu, deaths), r = _sums(rk, beta, ties)
    X = rk.X
    n, p = X.shape
    m = starts.size
    dh = 1.0 / den
    h = np.bincount(jj, weights=dh, minlength=m)
    hx = np.zeros((m, p))
    np.add.at(hx, jj, dh[:, None] * mu)
    w = 1.0 - a
    h_d = np.bincount(jj, weights=w * dh, minlength=m)
    hx_d = np.zeros((m, p))
    np.add.at(hx_d, jj, (w * dh)[:, None] * mu)
    mbar = np.zeros((m, p))
    np.add.at(mbar, jj, mu)
    mbar /= np.bincount(jj, minlength=m)[:, None]
    # row i is at risk at every event time whose first row is <= i (rows sorted by time)
    last = np.searchsorted(starts, np.arange(n), side="right") - 1
    H = np.concatenate([[0.0], np.cumsum(h)])[last + 1]
    HX = np.concatenate([np.zeros((1, p)), np.cumsum(hx, axis=0)])[last + 1]
    resid = -r[:, None] * (X * H[:, None] - HX)
    jd = np.repeat(np.arange(m), np.diff(np.append(np.cumsum(rk.d) - rk.d, deaths.size)))
    rd = r[deaths, None]
    resid[deaths] += rd * (X[deaths] * h[jd, None] - hx[jd])
    resid[deaths] -= rd * (X[deaths] * h_d[jd, None] - hx_d[jd])
    resid[deaths] += X[deaths] - mbar[jd]
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
