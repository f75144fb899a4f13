"""The proportional-hazards test of a Cox model, exactly as R ``survival::cox.zph`` (3.5-3).

The test (Grambsch & Therneau 1994, in the form of survival >= 3.0) is a score test of
adding the interaction ``x * g(t)`` for each term, where ``g`` is a transform of time
centred on the event times: one test per term and a global test over all terms. It uses
the Efron-weighted Schoenfeld residuals and the 2p x 2p information matrix of
``(x, x * g(t))`` at the fitted coefficients (R's C routine ``zph1``). The scaled
Schoenfeld residuals (plotted against ``g(t)``) are the residuals multiplied by the
inverse of the per-event average information, plus the coefficient, so that a flat
smooth at the coefficient means proportional hazards.

R equivalent::

    fit <- coxph(Surv(time, status) ~ x1 + x2 + strata(s), ties = "efron")
    cox.zph(fit, transform = "km")   # or "rank", "identity", "log"
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pannet.stratcox import CoxFit, _as_2d, coxph, risk_set_terms

__all__ = [
    "ZphResult",
    "cox_zph",
    "time_transform",
    "plot_zph",
    "zph_smooth",
    "smooth_arrays",
    "plot_ph_panels",
]

TRANSFORMS = ("km", "rank", "identity", "log")


@dataclass
class ZphResult:
    """What R's ``cox.zph`` returns.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns term, chisq, df, p; one row per term and a last row "GLOBAL" (R ``$table``).
    x : ndarray (d,)
        Transformed event times, R ``$x``.
    time : ndarray (d,)
        Event times, R ``$time``.
    y : ndarray (d, nterm)
        Scaled Schoenfeld residuals, R ``$y`` (NaN where a term is constant in a stratum).
    var : ndarray (nterm, nterm)
        R ``$var``: inverse of the average information, used for the smooth's bands.
    strata : ndarray (d,) or None
        Stratum code of each event.
    transform : str
        The time transform.
    terms : list of str
        Term names.
    fit : CoxFit
        The Cox fit the test was computed for.
    """

    table: object
    x: np.ndarray
    time: np.ndarray
    y: np.ndarray
    var: np.ndarray
    strata: np.ndarray | None
    transform: str
    terms: list[str]
    fit: CoxFit


def time_transform(time, event, transform: str = "km") -> np.ndarray:
    """g(t) of every observation, as ``cox.zph`` computes it before centring.

    "km": 1 - S(t-), the left-continuous Kaplan-Meier of all observations (strata
    ignored, unweighted); "rank": ``rank(time)`` over all observations (ties averaged);
    "identity": t; "log": log t.
    """
    from scipy.stats import rankdata

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=float)
    if transform == "identity":
        return time.copy()
    if transform == "log":
        if np.any(time <= 0):
            raise ValueError("transform 'log' needs positive times")
        return np.log(time)
    if transform == "rank":
        return rankdata(time, method="average")
    if transform == "km":
        ut, inv = np.unique(time, return_inverse=True)
        deaths = np.bincount(inv, weights=event, minlength=len(ut))
        leaving = np.bincount(inv, minlength=len(ut))
        at_risk = len(time) - np.r_[0, np.cumsum(leaving)[:-1]]
        surv = np.cumprod(1 - deaths / at_risk)
        # S(t-) = survival after the previous unique time (1 before the first)
        s_minus = np.r_[1.0, surv[:-1]]
        return 1 - s_minus[inv]
    raise ValueError(f"transform must be one of {TRANSFORMS}, not {transform!r}")


def cox_zph(
    time,
    event,
    X,
    strata=None,
    weights=None,
    ties: str = "efron",
    transform: str = "km",
    names=None,
    terms: dict[str, list[int]] | None = None,
    fit: CoxFit | None = None,
) -> ZphResult:
    """Test proportional hazards of a Cox model, as R ``cox.zph(fit, transform)``.

    Parameters
    ----------
    time, event, X, strata, weights, ties
        The data and options of the Cox model (see :func:`pannet.stratcox.coxph`).
    transform : {"km", "rank", "identity", "log"}
        Time transform g(t); R's default "km".
    names : list of str, optional
        Column names of X.
    terms : dict of term name -> list of column indices, optional
        Columns tested jointly (R's ``terms = TRUE`` for a factor's dummy columns); by
        default every column is its own term.
    fit : CoxFit, optional
        An existing fit on the same data; refitted when not given.

    Returns
    -------
    ZphResult
    """
    import pandas as pd
    from scipy import stats

    X2 = _as_2d(X)
    nvar = X2.shape[1]
    names = list(names) if names is not None else [f"x{i + 1}" for i in range(nvar)]
    if fit is None:
        fit = coxph(time, event, X2, strata=strata, weights=weights, ties=ties, names=names)
    beta = np.asarray(fit.coef, dtype=float)
    if terms is None:
        terms = {nm: [i] for i, nm in enumerate(names)}
    term_names = list(terms)
    asgn = [list(terms[t]) for t in term_names]
    time_a = np.asarray(time, dtype=float)
    event_a = np.asarray(event, dtype=float)
    w = np.ones(len(time_a)) if weights is None else np.asarray(weights, dtype=float)

    tt = time_transform(time_a, event_a, transform)
    gtime = tt - tt[event_a == 1].mean()
    rs = risk_set_terms(time_a, event_a, X2, X2 @ beta, strata, weights, ties)
    dead = rs["death"]
    g = gtime[dead]
    wt = rs["wt"]
    cov = rs["cov"]

    # score of the x * g(t) block, and the 2p x 2p information of (x, x * g(t))
    u2 = (w[dead, None] * g[:, None] * X2[dead]).sum(axis=0) - ((wt * g)[:, None] * rs["mean"]).sum(
        axis=0
    )
    i11 = (wt[:, None, None] * cov).sum(axis=0)
    i12 = ((wt * g)[:, None, None] * cov).sum(axis=0)
    i22 = ((wt * g * g)[:, None, None] * cov).sum(axis=0)
    imat = np.block([[i11, i12], [i12.T, i22]])

    test, df = [], []
    for jj in asgn:
        kk = list(range(nvar)) + [j + nvar for j in jj]
        u = np.r_[np.zeros(nvar), u2[jj]]
        test.append(float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u)))
        df.append(len(jj))
    u = np.r_[np.zeros(nvar), u2]
    test.append(float(u @ np.linalg.solve(imat, u)))
    df.append(nvar)
    table = pd.DataFrame({"term": [*term_names, "GLOBAL"], "chisq": test, "df": df})
    table["p"] = stats.chi2.sf(table["chisq"], table["df"])

    # scaled Schoenfeld residuals
    if strata is None:
        s_codes = np.zeros(len(time_a), dtype=np.int64)
    else:
        _, s_codes = np.unique(np.asarray(strata), return_inverse=True)
    nstrat = int(s_codes.max()) + 1
    used = np.zeros((nstrat, nvar))
    ev_per_stratum = np.bincount(s_codes, weights=event_a, minlength=nstrat)
    for s in range(nstrat):
        xs = X2[s_codes == s]
        varies = (xs != xs[:1]).any(axis=0)
        used[s] = np.where(varies, ev_per_stratum[s], 0)
    for jj in asgn:  # a multi-column term counts as used when any of its columns is
        if len(jj) > 1:
            used[:, jj] = used[:, jj].max(axis=1, keepdims=True)
    wtmat = np.zeros((nvar, nvar))
    for s in range(nstrat):
        wtmat += np.minimum.outer(used[s], used[s])
    vmean = i11 / np.where(wtmat == 0, 1, wtmat)
    sresid = X2[dead] - rs["efron_mean"]
    if any(len(jj) > 1 for jj in asgn):
        tmat = np.zeros((nvar, len(asgn)))
        for i, jj in enumerate(asgn):
            tmat[jj, i] = 1 if len(jj) == 1 else beta[jj]
        sresid = sresid @ tmat
        vmean = tmat.T @ vmean @ tmat
        used = used[:, [jj[0] for jj in asgn]]
    ev_stratum = s_codes[dead]
    for s in range(nstrat):
        k = np.flatnonzero(used[s] > 0)
        rows = ev_stratum == s
        if len(k) > 0:
            sub = sresid[np.ix_(rows, k)]
            sresid[np.ix_(rows, k)] = np.linalg.solve(vmean[np.ix_(k, k)], sub.T).T
        other = np.setdiff1d(np.arange(sresid.shape[1]), k)
        if len(other):
            sresid[np.ix_(rows, other)] = np.nan
    for i, jj in enumerate(asgn):
        sresid[:, i] += beta[jj[0]] if len(jj) == 1 else 1.0
    return ZphResult(
        table=table,
        x=tt[dead],
        time=time_a[dead],
        y=sresid,
        var=np.linalg.inv(vmean),
        strata=None if strata is None else np.asarray(strata)[dead],
        transform=transform,
        terms=term_names,
        fit=fit,
    )


def _ns_basis(x, knots, boundary):
    """A natural cubic spline basis (truncated-power form) with intercept.

    It spans the same space as R's ``cbind(1, ns(x, knots = knots, Boundary.knots =
    boundary))``, so least-squares fits equal R's.
    """
    all_knots = np.r_[boundary[0], knots, boundary[1]]
    K = len(all_knots)

    def d(k):
        return (np.maximum(x - all_knots[k], 0) ** 3 - np.maximum(x - all_knots[-1], 0) ** 3) / (
            all_knots[-1] - all_knots[k]
        )

    cols = [np.ones_like(x), x] + [d(k) - d(K - 2) for k in range(K - 2)]
    return np.column_stack(cols)


def zph_smooth(res: ZphResult, term: int = 0, df: int = 4, nsmo: int = 40, se: bool = True):
    """The smooth ``plot.cox.zph`` draws: a natural spline (df 4) of the scaled residuals.

    Knots at the quantiles of the transformed event times (R ``ns(x, df = 4)``), fitted by
    least squares on the residuals; the bands are +/- 2 standard errors using the
    residuals' variance ``res.var`` (R ``plot.cox.zph(..., se = TRUE)``).

    Returns
    -------
    dict with ``x`` (grid), ``fit``, and ``lower``/``upper`` when ``se``.
    """
    return smooth_arrays(res.x, res.y[:, term], res.var[term, term], df, nsmo, se)


def smooth_arrays(x, y, var: float, df: int = 4, nsmo: int = 40, se: bool = True) -> dict:
    """:func:`zph_smooth` on plain arrays (transformed times, residuals, residual variance)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    ok = ~np.isnan(y)
    xx, yy = x[ok], y[ok]
    qs = np.linspace(0, 1, df + 1)[1:-1]
    knots = np.quantile(xx, qs)  # R quantile type 7
    boundary = (xx.min(), xx.max())
    B = _ns_basis(xx, knots, boundary)
    coef, *_ = np.linalg.lstsq(B, yy, rcond=None)
    grid = np.linspace(boundary[0], boundary[1], nsmo)
    P = _ns_basis(grid, knots, boundary)
    out = {"x": grid, "fit": P @ coef}
    if se:
        xtx_inv = np.linalg.pinv(B.T @ B)
        seval = np.einsum("ij,jk,ik->i", P, xtx_inv, P)
        half = 2 * np.sqrt(var * seval)
        out["lower"] = out["fit"] - half
        out["upper"] = out["fit"] + half
    return out


def plot_zph(res: ZphResult, term: int = 0, ax=None, title: str | None = None):
    """Scaled Schoenfeld residuals against transformed time with the spline smooth.

    The horizontal dashed line is the Cox coefficient: under proportional hazards the
    smooth stays flat around it. The x axis is labelled in the original time units at the
    event times (as R's ``plot.cox.zph`` labels it for the "km" and "rank" transforms).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    sm = zph_smooth(res, term)
    ax.scatter(res.x, res.y[:, term], s=10, color="#555555", alpha=0.6, label="scaled residual")
    ax.plot(sm["x"], sm["fit"], color="#0072B2", lw=2, label="spline smooth (df 4)")
    ax.plot(sm["x"], sm["lower"], color="#0072B2", lw=1, ls="--")
    ax.plot(sm["x"], sm["upper"], color="#0072B2", lw=1, ls="--", label="+/- 2 SE")
    coef = res.fit.coef[term] if len(res.terms) == len(res.fit.coef) else None
    if coef is not None:
        ax.axhline(coef, color="#D55E00", lw=1, ls=":", label=f"Cox coefficient {coef:.3f}")
    if res.transform in ("km", "rank"):
        # label ticks with the time at which each transformed quantile is reached
        ticks = np.quantile(res.x, [0, 0.25, 0.5, 0.75, 1])
        idx = [int(np.argmin(np.abs(res.x - t))) for t in ticks]
        ax.set_xticks(res.x[idx])
        ax.set_xticklabels([f"{res.time[i]:.3g}" for i in idx])
        ax.set_xlabel(f"Time (axis: {res.transform} transform)")
    else:
        ax.set_xlabel(f"{res.transform}(time)" if res.transform != "identity" else "Time")
    row = res.table.iloc[term]
    ax.set_ylabel(f"Beta(t) for {res.terms[term]}")
    ax.set_title(title or f"{res.terms[term]}: PH test chi2 {row.chisq:.2f}, p = {row.p:.3g}")
    ax.legend(fontsize=7, loc="best")
    return ax


def plot_ph_panels(tests, residuals, path, synthetic: bool = False) -> None:
    """One panel per population x endpoint x model: scaled residuals and their smooth.

    Parameters
    ----------
    tests, residuals : DataFrame
        ``ph_tests`` and ``ph_residuals`` of :func:`pannet.diagnostics.run_ph_tests`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pannet.io import save_figure

    glob = tests[tests["term"] == "GLOBAL"].reset_index(drop=True)
    n = len(glob)
    ncol = 2
    nrow = max(1, -(-n // ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(5.2 * ncol, 3.6 * nrow), squeeze=False)
    for ax, r in zip(axes.ravel(), glob.itertuples(), strict=False):
        d = residuals[
            (residuals["population"] == r.population)
            & (residuals["endpoint"] == r.endpoint)
            & (residuals["model"] == r.model)
        ]
        sm = smooth_arrays(d["x"], d["resid"], r.resid_var)
        ax.scatter(d["x"], d["resid"], s=8, color="#555555", alpha=0.6)
        ax.plot(sm["x"], sm["fit"], color="#0072B2", lw=2)
        ax.plot(sm["x"], sm["lower"], color="#0072B2", lw=1, ls="--")
        ax.plot(sm["x"], sm["upper"], color="#0072B2", lw=1, ls="--")
        ax.axhline(r.coef, color="#D55E00", lw=1, ls=":")
        model = "Cox, strata(pair)" if r.model == "strata_pair" else "Cox"
        ax.set_title(f"{r.population} / {r.endpoint.upper()} ({model}): p = {r.p:.3g}", fontsize=9)
        ax.set_xlabel(f"{r.transform}-transformed time")
        ax.set_ylabel("Beta(t) for treated")
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    fig.suptitle(
        ("SYNTHETIC DEMO DATA - " if synthetic else "")
        + "Scaled Schoenfeld residuals (dotted: Cox coefficient; dashed: +/- 2 SE)",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path, fmt="png", dpi=150)
    plt.close(fig)
