"""Cox proportional hazards fits, stratified, with Efron or Breslow ties (numpy only).

The diagnostics need a Cox fit of their own: the proportional-hazards test
(:mod:`pannet.phtest`) re-evaluates the partial likelihood at the fitted coefficients, and
the matched analysis gets a second outcome model beside the pair-clustered robust-SE model,
a Cox model stratified on the matched pair (each pair its own baseline hazard). Both agree
with R ``survival`` 3.5-3 to 1e-6 (``tests/test_stratcox.py``).

R equivalents::

    coxph(Surv(time, status) ~ x1 + x2, data, ties = "efron")
    coxph(Surv(time, status) ~ group + strata(pair), data, ties = "efron")
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CoxFit", "coxph", "risk_set_terms", "stratified_pair_cox"]


@dataclass
class CoxFit:
    """A fitted Cox model (the fields R's ``coxph`` object and ``summary`` show).

    Attributes
    ----------
    coef : ndarray (p,)
        Log hazard ratios.
    var : ndarray (p, p)
        Inverse of the observed information (model-based variance), R ``fit$var``.
    loglik : tuple of float
        Log partial likelihood at beta = 0 and at the estimate, R ``fit$loglik``.
    score : float
        Score (log-rank) test at beta = 0, R ``fit$score``.
    iterations : int
        Newton-Raphson iterations used.
    n, nevent : int
        Observations and events used.
    ties : str
        "efron" or "breslow".
    names : list of str
        Covariate names.
    """

    coef: np.ndarray
    var: np.ndarray
    loglik: tuple[float, float]
    score: float
    iterations: int
    n: int
    nevent: int
    ties: str
    names: list[str] = field(default_factory=list)

    @property
    def se(self) -> np.ndarray:
        """Model-based standard errors, R ``sqrt(diag(fit$var))``."""
        return np.sqrt(np.diag(self.var))

    def summary(self, conf_level: float = 0.95):
        """One row per covariate: coef, HR, SE, z, p, CI of the HR (R ``summary(fit)``).

        Also the likelihood-ratio, Wald and score tests of the whole model as columns.
        """
        import pandas as pd
        from scipy import stats

        z = self.coef / self.se
        q = stats.norm.ppf(0.5 + conf_level / 2)
        p = len(self.coef)
        lr = 2 * (self.loglik[1] - self.loglik[0])
        wald = float(self.coef @ np.linalg.solve(self.var, self.coef))
        return pd.DataFrame(
            {
                "term": self.names,
                "coef": self.coef,
                "hr": np.exp(self.coef),
                "se": self.se,
                "z": z,
                "p": 2 * stats.norm.sf(np.abs(z)),
                "hr_lower": np.exp(self.coef - q * self.se),
                "hr_upper": np.exp(self.coef + q * self.se),
                "n": self.n,
                "nevent": self.nevent,
                "lr_chisq": lr,
                "wald_chisq": wald,
                "score_chisq": self.score,
                "df": p,
                "ties": self.ties,
            }
        )


def _as_2d(x) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _sorted_design(time, event, X, strata, weights):
    """Validate inputs and order rows by stratum, then time ascending (R's ``order``)."""
    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    X = _as_2d(X)
    n = len(time)
    if len(event) != n or X.shape[0] != n:
        raise ValueError(f"time ({n}), event ({len(event)}) and X ({X.shape[0]}) differ in length")
    if not np.all(np.isin(event, (0, 1))):
        raise ValueError("event must be 0/1")
    if not np.all(np.isfinite(time)) or not np.all(np.isfinite(X)):
        raise ValueError("time and covariates must be finite (drop missing rows first)")
    if strata is None:
        s = np.zeros(n, dtype=np.int64)
    else:
        _, s = np.unique(np.asarray(strata), return_inverse=True)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    order = np.lexsort((time, s))
    return time, event, X, s, w, order


def risk_set_terms(time, event, X, eta, strata=None, weights=None, ties="efron"):
    """The per-death terms of the Cox partial likelihood at linear predictor ``eta``.

    Each death (row with event 1) gets one term: for Efron's approximation the k-th of the
    d deaths tied at a time (k = 0..d-1) removes the fraction k/d of the tied deaths' risk
    from the risk set and carries weight (sum of the tied deaths' weights) / d, exactly as
    R ``coxph`` and ``cox.zph`` (C routine ``zph1``) accumulate them. With Breslow every
    term is the full risk set, weighted by its own death's weight.

    Returns
    -------
    dict
        ``order`` (rows sorted by stratum and time), ``death`` (row index, original order, of
        each term's death), ``group`` (tied-set id of each term), ``wt`` (term weight),
        ``log_den`` (log of the term's risk-set denominator), ``mean`` (term's weighted mean
        of X, shape (m, p)), ``cov`` (weighted covariance of X over the term's risk set,
        shape (m, p, p)), ``efron_mean`` (per term, the mean over its tied set of the term
        means: the expected X used by Schoenfeld residuals).
    """
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', not {ties!r}")
    time, event, X, s, w, order = _sorted_design(time, event, X, strata, weights)
    eta = np.asarray(eta, dtype=float)
    # Centre X: the terms are invariant to it and exp() and the sums stay well-scaled.
    Xc = X - X.mean(axis=0)
    p = X.shape[1]
    ts, es, Xs, ss, ws = time[order], event[order], Xc[order], s[order], w[order]
    # Scale the risks within the stratum by its largest eta: ratios are unchanged.
    eta_s = eta[order]
    risk = ws * np.exp(eta_s - np.max(eta_s))
    n = len(ts)
    # Tied sets: consecutive rows (sorted) sharing stratum and time.
    new = np.ones(n, dtype=bool)
    new[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    tie_id = np.cumsum(new) - 1
    ntie = tie_id[-1] + 1
    # Risk set of a tied set = rows of the same stratum at or after it: reverse cumulative
    # sums restarted at each stratum.
    rx = risk[:, None] * Xs
    rxx = risk[:, None, None] * Xs[:, :, None] * Xs[:, None, :]

    # first row of the next stratum, for every row (ss is sorted)
    next_start = np.searchsorted(ss, ss, side="right")

    def rev_cumsum_by_stratum(a):
        out = np.cumsum(a[::-1], axis=0)[::-1]
        out = np.concatenate([out, np.zeros_like(out[:1])])
        return out[:n] - out[next_start]

    first_of_tie = np.flatnonzero(new)
    S0 = rev_cumsum_by_stratum(risk)[first_of_tie]
    S1 = rev_cumsum_by_stratum(rx)[first_of_tie]
    S2 = rev_cumsum_by_stratum(rxx)[first_of_tie]
    dead = es == 1
    D0 = np.bincount(tie_id[dead], weights=risk[dead], minlength=ntie)
    D1 = np.zeros((ntie, p))
    D2 = np.zeros((ntie, p, p))
    np.add.at(D1, tie_id[dead], rx[dead])
    np.add.at(D2, tie_id[dead], rxx[dead])
    ndead = np.bincount(tie_id[dead], minlength=ntie)
    deadwt = np.bincount(tie_id[dead], weights=ws[dead], minlength=ntie)

    g = tie_id[dead]
    # k = 0..d-1 within each tied set, in sorted order
    pos = np.arange(dead.sum())
    first_pos = np.r_[0, np.cumsum(ndead[ndead > 0])[:-1]]
    k = pos - np.repeat(first_pos, ndead[ndead > 0])
    d = ndead[g].astype(float)
    if ties == "efron":
        frac = k / d
        wt = deadwt[g] / d
    else:
        frac = np.zeros_like(d)
        wt = ws[dead]
    den = S0[g] - frac * D0[g]
    m1 = (S1[g] - frac[:, None] * D1[g]) / den[:, None]
    m2 = (S2[g] - frac[:, None, None] * D2[g]) / den[:, None, None]
    cov = m2 - m1[:, :, None] * m1[:, None, :]
    # Schoenfeld expected value: for Efron the average of the tied set's term means.
    if ties == "efron":
        msum = np.zeros((ntie, p))
        np.add.at(msum, g, m1)
        efron_mean = msum[g] / d[:, None]
    else:
        efron_mean = m1
    log_den = np.log(den) + np.max(eta_s)
    return {
        "order": order,
        "death": order[dead],
        "group": g,
        "wt": wt,
        "log_den": log_den,
        "mean": m1 + X.mean(axis=0),
        "cov": cov,
        "efron_mean": efron_mean + X.mean(axis=0),
        "time": ts[dead],
        "stratum": ss[dead],
    }


def _loglik_score_info(time, event, X, beta, strata, weights, ties):
    X2 = _as_2d(X)
    eta = X2 @ beta
    t = risk_set_terms(time, event, X2, eta, strata, weights, ties)
    w = np.ones(len(eta)) if weights is None else np.asarray(weights, dtype=float)
    dead = t["death"]
    ll = float(np.sum(w[dead] * eta[dead]) - np.sum(t["wt"] * t["log_den"]))
    U = (w[dead, None] * X2[dead]).sum(axis=0) - (t["wt"][:, None] * t["mean"]).sum(axis=0)
    info = (t["wt"][:, None, None] * t["cov"]).sum(axis=0)
    return ll, U, info


def coxph(
    time,
    event,
    X,
    strata=None,
    weights=None,
    ties: str = "efron",
    names=None,
    max_iter: int = 30,
    tol: float = 1e-12,
) -> CoxFit:
    """Fit a Cox model by Newton-Raphson from beta = 0, as R ``coxph`` does.

    Parameters
    ----------
    time, event : array-like (n,)
        Follow-up time and event indicator (1 event, 0 censored).
    X : array-like (n,) or (n, p)
        Covariates (already coded numerically).
    strata : array-like (n,), optional
        Stratum labels; each stratum has its own baseline hazard (R ``strata()``).
    weights : array-like (n,), optional
        Case weights.
    ties : {"efron", "breslow"}
        Handling of tied event times (R's default is Efron).
    names : list of str, optional
        Covariate names.
    max_iter, tol : int, float
        Iteration limit and convergence tolerance on the largest Newton step. Iterating to
        a full Newton step below ``tol`` gives R's converged estimate to far below 1e-6.

    Returns
    -------
    CoxFit

    Notes
    -----
    Step-halving is used when an iteration lowers the log partial likelihood, as in R's
    ``coxph.fit``. R: ``coxph(Surv(time, event) ~ X + strata(strata), ties = ties)``.
    """
    X2 = _as_2d(X)
    p = X2.shape[1]
    names = list(names) if names is not None else [f"x{i + 1}" for i in range(p)]
    beta = np.zeros(p)
    ll0, U0, I0 = _loglik_score_info(time, event, X2, beta, strata, weights, ties)
    score = float(U0 @ np.linalg.solve(I0, U0))
    ll, U, info = ll0, U0, I0
    iterations = 0
    while True:
        iterations += 1
        if iterations > max_iter:
            raise RuntimeError(
                f"Cox fit did not converge in {max_iter} iterations (coef {beta}); "
                "the data may be separable (e.g. no events in one group)"
            )
        step = np.linalg.solve(info, U)
        new = beta + step
        ll_new, U_new, info_new = _loglik_score_info(time, event, X2, new, strata, weights, ties)
        halvings = 0
        while (not np.isfinite(ll_new) or ll_new < ll - 1e-12) and halvings < 30:
            step /= 2
            new = beta + step
            ll_new, U_new, info_new = _loglik_score_info(
                time, event, X2, new, strata, weights, ties
            )
            halvings += 1
        beta, ll, U, info = new, ll_new, U_new, info_new
        if np.max(np.abs(step)) < tol:
            break
    event_arr = np.asarray(event)
    return CoxFit(
        coef=beta,
        var=np.linalg.inv(info),
        loglik=(ll0, ll),
        score=score,
        iterations=iterations,
        n=len(event_arr),
        nevent=int(event_arr.sum()),
        ties=ties,
        names=names,
    )


def stratified_pair_cox(
    df,
    time: str = "os_years",
    event: str = "os_event",
    treated: str = "treated",
    pair: str = "pair_id",
    ties: str = "efron",
    conf_level: float = 0.95,
):
    """Cox model of ``treated`` stratified on the matched pair (R ``strata(pair)``).

    Each pair has its own baseline hazard, so the hazard ratio compares the two members of
    a pair only; pairs in which no event is observed while both members are at risk carry
    no information.

    R: ``coxph(Surv(time, event) ~ treated + strata(pair), data = df, ties = "efron")``

    Returns
    -------
    pandas.DataFrame
        One row: the :meth:`CoxFit.summary` columns plus ``pairs`` and
        ``informative_pairs`` (pairs with at least one event at a time when both members
        were at risk).
    """
    for col in (time, event, treated, pair):
        if col not in df.columns:
            raise KeyError(f"stratified_pair_cox: column {col!r} missing (have {list(df.columns)})")
    d = df[[time, event, treated, pair]].dropna()
    fit = coxph(
        d[time].to_numpy(float),
        d[event].to_numpy(int),
        d[treated].to_numpy(float),
        strata=d[pair].to_numpy(),
        ties=ties,
        names=[treated],
    )
    out = fit.summary(conf_level)
    # a pair informs the partial likelihood when its first event happens with both at risk
    t_min = d.groupby(pair)[time].transform("min")
    ev_at_min = d.loc[d[time] == t_min].groupby(pair)[event].max()
    size = d.groupby(pair).size()
    informative = int(((ev_at_min == 1) & (size.loc[ev_at_min.index] >= 2)).sum())
    out["pairs"] = int(d[pair].nunique())
    out["informative_pairs"] = informative
    return out
