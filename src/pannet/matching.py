"""Propensity score and greedy nearest-neighbour caliper matching (MatchIt semantics).

Public API, usable on any DataFrame outside the workflow:

- :func:`design_matrix` - one-hot coding of categorical covariates against a reference level.
- :func:`fit_logistic` - unpenalised logistic regression by IRLS, step for step as R's
  ``glm.fit`` (same start, same convergence rule), so coefficients and standard errors
  agree with ``glm(..., family = binomial)`` to machine precision.
- :func:`fit_propensity` / :func:`propensity_score` - the propensity model of a treatment
  on covariates.
- :func:`match_nearest` - greedy nearest-neighbour matching with a caliper, exactly MatchIt's
  ``method = "nearest"`` (general routine), in O(n log n) without a distance matrix.
- :func:`caliper_width` - the caliper on the distance scale.

The workflow steps (``run_propensity``, ``run_matching``) wrap these for the analysis
dataset. The numerical cores take and return numpy arrays only, so a bootstrap can call them
in a loop without pandas overhead.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# R's glm.fit / binomial() constants: thresholds of the logit link (src/library/stats/src/family.c)
_DBL_EPS = np.finfo(float).eps
_THRESH = 30.0
_MTHRESH = -30.0
_INVEPS = 1.0 / _DBL_EPS

ORDERS = ("largest", "smallest", "random", "data")


class MatchingError(ValueError):
    """Bad input to the propensity model or the matcher (message names column and rows)."""


# ---------------------------------------------------------------------------
# Design matrix
def _levels_of(series: pd.Series, known: Sequence[str] | None) -> list[str]:
    present = pd.unique(series.astype("string").dropna())
    if known is not None:
        extra = sorted(set(present) - set(known))
        if extra:
            raise MatchingError(
                f"column '{series.name}': value(s) {extra} are not among its levels {list(known)}"
            )
        return list(known)
    return sorted(present)  # R's factor() default: sorted unique values


def design_matrix(
    df: pd.DataFrame,
    covariates: Sequence[str],
    reference: Mapping[str, str] | None = None,
    levels: Mapping[str, Sequence[str]] | None = None,
    drop_empty: bool = True,
) -> tuple[np.ndarray, list[dict]]:
    """Intercept plus one-hot columns of the categorical covariates (treatment coding).

    Parameters
    ----------
    df : DataFrame
        The data, one row per unit.
    covariates : sequence of str
        Columns to include. String/categorical/boolean-like object columns are coded as
        factors; numeric columns enter as they are.
    reference : mapping, optional
        Column -> reference level. Default: the first level (R's ``relevel`` default).
    levels : mapping, optional
        Column -> ordered levels (default: :data:`pannet.cdm.TABLE1_LEVELS` for the Table 1
        variables, else the sorted unique values, as R's ``factor``). "N/A" is an ordinary
        level of its own.
    drop_empty : bool
        Drop dummy columns of levels absent from ``df`` (R reports them as aliased, NA).

    Returns
    -------
    X : ndarray, shape (n, p)
    terms : list of dict
        One per column: ``term`` (R-style name, e.g. ``age_group50-59``), ``variable``,
        ``level`` (None for the intercept and numeric columns).

    Notes
    -----
    R equivalent: ``model.matrix(~ ., data)`` with every factor's levels in the same
    order (``factor(x, levels = ...)``).
    """
    from pannet.cdm import TABLE1_LEVELS

    reference = dict(reference or {})
    levels = {**TABLE1_LEVELS, **dict(levels or {})}
    n = len(df)
    cols: list[np.ndarray] = [np.ones(n)]
    terms: list[dict] = [{"term": "(Intercept)", "variable": None, "level": None}]
    for cov in covariates:
        if cov not in df.columns:
            raise MatchingError(f"covariate column '{cov}' is not in the data")
        s = df[cov]
        if s.isna().any():
            rows = list(np.flatnonzero(s.isna().to_numpy())[:5])
            raise MatchingError(
                f"covariate column '{cov}' has missing values (first row positions {rows}); "
                "code unknowns as their own level (e.g. 'N/A') before fitting"
            )
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            cols.append(s.to_numpy(dtype=float))
            terms.append({"term": cov, "variable": cov, "level": None})
            continue
        lv = _levels_of(s, levels.get(cov))
        ref = reference.get(cov, lv[0])
        if ref not in lv:
            raise MatchingError(f"reference level '{ref}' of '{cov}' is not among {lv}")
        values = s.astype("string").to_numpy()
        for level in lv:
            if level == ref:
                continue
            col = (values == level).astype(float)
            if drop_empty and not col.any():
                continue
            cols.append(col)
            terms.append({"term": f"{cov}{level}", "variable": cov, "level": level})
    return np.column_stack(cols), terms


# ---------------------------------------------------------------------------
# Logistic regression (R glm.fit, binomial, logit link)
def _linkinv(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, _MTHRESH, _THRESH))
    mu = e / (1.0 + e)
    mu = np.where(eta < _MTHRESH, _DBL_EPS, mu)
    return np.where(eta > _THRESH, _INVEPS / (1.0 + _INVEPS), mu)


def _mu_eta(eta: np.ndarray) -> np.ndarray:
    e = np.exp(np.clip(eta, _MTHRESH, _THRESH))
    out = e / (1.0 + e) ** 2
    return np.where((eta > _THRESH) | (eta < _MTHRESH), _DBL_EPS, out)


def _deviance(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = np.where(y > 0, y * np.log(y / mu), 0.0)
        t0 = np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0.0)
    return float(2.0 * np.sum(t1 + t0))


@dataclass
class LogisticFit:
    """Result of :func:`fit_logistic` (names follow R's ``glm`` object)."""

    coef: np.ndarray
    se: np.ndarray
    linear_predictor: np.ndarray
    fitted: np.ndarray
    deviance: float
    null_deviance: float
    iterations: int
    converged: bool
    cov: np.ndarray = field(repr=False)


def fit_logistic(
    X: np.ndarray, y: np.ndarray, epsilon: float = 1e-8, maxit: int = 25
) -> LogisticFit:
    """Unpenalised logistic regression by iteratively reweighted least squares.

    Follows R's ``glm.fit`` for ``binomial(link = "logit")`` with unit weights: start at
    ``mu = (y + 0.5) / 2``; each step a weighted least squares fit of the working response;
    stop when ``|dev - dev_old| / (|dev| + 0.1) < epsilon``. Standard errors come from the
    weights of the last WLS step, as ``summary.glm`` takes them from the last QR.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Design matrix including the intercept column, full column rank.
    y : ndarray, shape (n,)
        0/1 outcome.
    epsilon, maxit : float, int
        ``glm.control`` defaults.

    Notes
    -----
    R equivalent: ``glm(y ~ X - 1, family = binomial)``; ``coef(summary(fit))[, 1:2]``.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise MatchingError(
            "design matrix is rank deficient: some covariate levels are collinear "
            "(e.g. a level that determines another); drop or merge them"
        )
    mu = (y + 0.5) / 2.0
    eta = np.log(mu / (1 - mu))
    dev_old = _deviance(y, mu)
    converged = False
    iterations = 0
    coef = np.zeros(p)
    for it in range(1, maxit + 1):
        iterations = it
        mu_eta = _mu_eta(eta)
        z = eta + (y - mu) / mu_eta
        w = np.sqrt(mu_eta**2 / (mu * (1 - mu)))
        Xw = X * w[:, None]
        coef, *_ = np.linalg.lstsq(Xw, z * w, rcond=None)
        eta = X @ coef
        mu = _linkinv(eta)
        dev = _deviance(y, mu)
        if abs(dev - dev_old) / (abs(dev) + 0.1) < epsilon:
            converged = True
            break
        dev_old = dev
    if not converged:
        warnings.warn(f"logistic regression did not converge in {maxit} iterations", stacklevel=2)
    if np.any(mu > 1 - 10 * _DBL_EPS) or np.any(mu < 10 * _DBL_EPS):
        warnings.warn(
            "fitted probabilities numerically 0 or 1 occurred (separation): the "
            "coefficients of the separating levels are not finite estimates",
            stacklevel=2,
        )
    cov = np.linalg.inv(Xw.T @ Xw)
    ybar = y.mean()
    return LogisticFit(
        coef=coef,
        se=np.sqrt(np.diag(cov)),
        linear_predictor=eta,
        fitted=mu,
        deviance=dev,
        null_deviance=_deviance(y, np.full(n, ybar)),
        iterations=iterations,
        converged=converged,
        cov=cov,
    )


@dataclass
class PropensityModel:
    """A fitted propensity model: coefficient table and per-unit scores."""

    coefficients: pd.DataFrame  # term, variable, level, estimate, std_error, z, p_value
    ps: pd.Series  # P(treated | covariates), indexed like the input
    logit: pd.Series  # linear predictor
    fit: LogisticFit = field(repr=False)


def _treatment_vector(df: pd.DataFrame, treatment: str) -> np.ndarray:
    if treatment not in df.columns:
        raise MatchingError(f"treatment column '{treatment}' is not in the data")
    t = df[treatment]
    if t.isna().any():
        rows = list(np.flatnonzero(t.isna().to_numpy())[:5])
        raise MatchingError(f"treatment column '{treatment}' has missing values (rows {rows})")
    vals = t.to_numpy()
    bad = ~np.isin(vals, [0, 1, True, False])
    if bad.any():
        rows = list(np.flatnonzero(bad)[:5])
        raise MatchingError(
            f"treatment column '{treatment}' must be 0/1; row positions {rows} are not"
        )
    return vals.astype(float)


def fit_propensity(
    df: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    reference: Mapping[str, str] | None = None,
    levels: Mapping[str, Sequence[str]] | None = None,
) -> PropensityModel:
    """Fit the propensity score model ``treatment ~ covariates`` (logistic, unpenalised).

    Returns coefficients with standard errors, Wald z and p, the propensity score and its
    logit (the linear predictor) per row.

    Notes
    -----
    R equivalent::

        fit <- glm(treated ~ age_group + sex + ..., family = binomial, data = d)
        coef(summary(fit)); fitted(fit); predict(fit, type = "link")

    with each factor's levels in the same order (reference first).
    """
    from math import erfc, sqrt

    y = _treatment_vector(df, treatment)
    X, terms = design_matrix(df, covariates, reference=reference, levels=levels)
    fit = fit_logistic(X, y)
    z = fit.coef / fit.se
    coefs = pd.DataFrame(terms)
    coefs["estimate"] = fit.coef
    coefs["std_error"] = fit.se
    coefs["z"] = z
    coefs["p_value"] = [erfc(abs(v) / sqrt(2.0)) for v in z]
    return PropensityModel(
        coefficients=coefs,
        ps=pd.Series(fit.fitted, index=df.index, name="ps"),
        logit=pd.Series(fit.linear_predictor, index=df.index, name="logit"),
        fit=fit,
    )


def propensity_score(
    df: pd.DataFrame,
    treatment: str,
    covariates: Sequence[str],
    reference: Mapping[str, str] | None = None,
) -> pd.Series:
    """Propensity score per row: ``P(treatment = 1 | covariates)`` from :func:`fit_propensity`.

    Notes
    -----
    R equivalent: ``fitted(glm(treatment ~ covariates, family = binomial, data = df))``.
    """
    return fit_propensity(df, treatment, covariates, reference=reference).ps


# ---------------------------------------------------------------------------
# Matching
def caliper_width(distance: np.ndarray, caliper: float | None, std_caliper: bool = True) -> float:
    """The caliper on the distance scale: ``caliper * sd(distance)`` when standardised.

    The SD is over all units (treated and control; ``n - 1`` denominator), as MatchIt
    computes ``sd(distance[!discarded])`` with no units discarded.
    """
    if caliper is None:
        return np.inf
    if caliper < 0:
        raise MatchingError(f"caliper must be >= 0, got {caliper}")
    d = np.asarray(distance, dtype=float)
    return float(caliper * np.std(d, ddof=1)) if std_caliper else float(caliper)


def treated_order(
    distance: np.ndarray, treated: np.ndarray, order="largest", random_state=None
) -> np.ndarray:
    """Positions (0-based, among the treated) in the order they choose their controls.

    ``largest``/``smallest``: by distance, ties in data order (R ``order()`` is stable both
    ways); ``data``: as given; ``random``: a permutation from ``SeedSequence(random_state)``
    (R's ``sample.int`` uses another generator, so random orders differ from MatchIt's);
    an array: that explicit order.
    """
    d1 = np.asarray(distance, dtype=float)[np.asarray(treated, dtype=bool)]
    n1 = d1.size
    if not isinstance(order, str):
        o = np.asarray(order, dtype=np.int64)
        if o.shape != (n1,) or not np.array_equal(np.sort(o), np.arange(n1)):
            raise MatchingError("an explicit order must be a permutation of 0..n_treated-1")
        return o
    if order == "largest":
        return np.argsort(-d1, kind="stable")
    if order == "smallest":
        return np.argsort(d1, kind="stable")
    if order == "data":
        return np.arange(n1)
    if order == "random":
        rng = np.random.default_rng(np.random.SeedSequence(random_state))
        return rng.permutation(n1)
    raise MatchingError(f"order must be one of {ORDERS} or an explicit permutation, got {order!r}")


def _find(parent: list[int], g: int) -> int:
    root = g
    while parent[root] != root:
        root = parent[root]
    while parent[g] != root:
        parent[g], g = root, parent[g]
    return root


def match_nearest_arrays(
    distance: np.ndarray,
    treated: np.ndarray,
    caliper: float | None = 0.2,
    std_caliper: bool = True,
    order="largest",
    ratio: int = 1,
    replace: bool = False,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Core of :func:`match_nearest` on numpy arrays.

    Returns ``(treated_pos, control_pos, round, abs_diff)``: 0-based positions into
    ``distance``, one row per matched (treated, control) pair, in the order made.
    """
    d = np.asarray(distance, dtype=float)
    t = np.asarray(treated)
    if d.ndim != 1 or t.shape != d.shape:
        raise MatchingError("distance and treated must be 1-d and of the same length")
    if not np.isfinite(d).all():
        raise MatchingError(
            f"distance has non-finite values at positions {np.flatnonzero(~np.isfinite(d))[:5].tolist()}"
        )
    t = t.astype(bool)
    if int(ratio) != ratio or ratio < 1:
        raise MatchingError(f"ratio must be a positive integer, got {ratio}")
    ratio = int(ratio)
    cal = caliper_width(d, caliper, std_caliper)
    idx1 = np.flatnonzero(t)
    idx0 = np.flatnonzero(~t)
    ord1 = treated_order(d, t, order, random_state)
    empty = np.empty(0, dtype=np.int64)
    if idx1.size == 0 or idx0.size == 0:
        return empty, empty, empty, np.empty(0)
    # controls sorted by (distance, data position): equal values form one group whose
    # members are taken in data order, as MatchIt's which.min takes the first minimum
    srt = np.argsort(d[idx0], kind="stable")
    c_pos = idx0[srt]
    c_val = d[c_pos]
    starts = np.flatnonzero(np.r_[True, c_val[1:] != c_val[:-1]])
    ends = np.r_[starts[1:], c_val.size]
    u = c_val[starts]
    if replace:
        return _match_with_replacement(d, idx1, ord1, c_pos, c_val, cal, ratio)
    G = u.size
    # last group with value <= x (the "left" side, which includes the exact-tie group)
    left0 = (np.searchsorted(u, d[idx1], side="right") - 1).tolist()
    u_l = u.tolist()
    head = starts.tolist()
    end_l = ends.tolist()
    c_pos_l = c_pos.tolist()
    # union-find "nearest free group" pointers; index shifted by one on the left side so
    # that 0 is the sentinel "no free group to the left"
    lpar = list(range(G + 1))
    rpar = list(range(G + 1))
    dl = d.tolist()
    out_t: list[int] = []
    out_c: list[int] = []
    out_r: list[int] = []
    out_d: list[float] = []
    n_free = c_pos.size
    ord_l = ord1.tolist()
    idx1_l = idx1.tolist()
    inf = float("inf")
    for r in range(ratio):
        for i in ord_l:
            if n_free == 0:
                break
            x = dl[idx1_l[i]]
            L = left0[i]
            gl = _find(lpar, L + 1) - 1
            gr = _find(rpar, L + 1)
            diff_l = abs(u_l[gl] - x) if gl >= 0 else inf
            diff_r = abs(u_l[gr] - x) if gr < G else inf
            if diff_l < diff_r:
                g, diff = gl, diff_l
            elif diff_r < diff_l:
                g, diff = gr, diff_r
            elif diff_l == inf:
                continue
            else:  # equidistant: the control first in data order, as which.min does
                g = gl if c_pos_l[head[gl]] < c_pos_l[head[gr]] else gr
                diff = diff_l
            if not diff <= cal:
                continue
            c = c_pos_l[head[g]]
            head[g] += 1
            n_free -= 1
            if head[g] == end_l[g]:
                lpar[g + 1] = g  # group g exhausted: skip it leftwards ...
                rpar[g] = g + 1  # ... and rightwards
            out_t.append(idx1_l[i])
            out_c.append(c)
            out_r.append(r)
            out_d.append(diff)
    return (
        np.asarray(out_t, dtype=np.int64),
        np.asarray(out_c, dtype=np.int64),
        np.asarray(out_r, dtype=np.int64),
        np.asarray(out_d, dtype=float),
    )


def _match_with_replacement(d, idx1, ord1, c_pos, c_val, cal, ratio):
    """Each treated unit takes its ``ratio`` nearest controls (reuse allowed), vectorised.

    MatchIt ignores ``m.order`` with replacement (matches are independent); ties are broken
    here by data position (MatchIt's partial sort leaves their order unspecified).
    """
    n0 = c_val.size
    k = min(ratio, n0)
    x = d[idx1][ord1]
    pos = np.searchsorted(c_val, x, side="left")
    offs = np.arange(-k, k)
    cand = pos[:, None] + offs[None, :]
    valid = (cand >= 0) & (cand < n0)
    candc = np.clip(cand, 0, n0 - 1)
    diff = np.where(valid, np.abs(c_val[candc] - x[:, None]), np.inf)
    cpos = np.where(valid, c_pos[candc], np.iinfo(np.int64).max)
    # sort candidates by (diff, data position); keep the k best within the caliper
    o = np.lexsort((cpos, diff), axis=-1)[:, :k]
    best_d = np.take_along_axis(diff, o, axis=1)
    best_c = np.take_along_axis(cpos, o, axis=1)
    keep = best_d <= cal
    tt = np.repeat(idx1[ord1][:, None], k, axis=1)
    rr = np.repeat(np.arange(k)[None, :], x.size, axis=0)
    return tt[keep], best_c[keep], rr[keep], best_d[keep]


def match_nearest(
    distance,
    treated,
    caliper: float | None = 0.2,
    std_caliper: bool = True,
    order="largest",
    ratio: int = 1,
    replace: bool = False,
    random_state=None,
) -> pd.DataFrame:
    """Greedy nearest-neighbour matching on a scalar distance, with a caliper.

    Semantics of R MatchIt ``matchit(method = "nearest")`` (its general routine): treated
    units are taken in ``order`` (``largest`` = decreasing distance, ties in data order);
    each takes the nearest control not yet used whose ``|d_c - d_t| <= caliper width``
    (ties between equally near controls go to the one first in data order, as
    ``which.min``); with ``ratio = k`` this is repeated in ``k`` rounds over all treated
    units. A treated unit with no free control inside the caliper stays unmatched.

    Runs in O(n log n): controls are sorted once and grouped by value, and union-find
    "nearest free group" pointers on both sides skip used controls, so no distance matrix
    is built (1,000,000 units in a few seconds).

    Parameters
    ----------
    distance : array-like or Series, shape (n,)
        The distance measure per unit (the logit of the PS, or the PS).
    treated : array-like or Series of 0/1, shape (n,)
    caliper : float or None
        Caliper; ``None`` for none.
    std_caliper : bool
        Caliper in SD units of ``distance`` (SD over all units, n - 1 denominator).
    order : {"largest", "smallest", "random", "data"} or array of int
        Matching order of the treated units (an explicit 0-based permutation is allowed).
    ratio : int
        Controls per treated unit (k:1).
    replace : bool
        Match with replacement (then ``order`` is irrelevant).
    random_state : int, optional
        Seed for ``order="random"`` (through ``numpy.random.SeedSequence``).

    Returns
    -------
    DataFrame
        ``treated_index``, ``control_index`` (index labels of the inputs, or positions for
        arrays), ``pair_id`` (1-based, numbered by the treated unit's data position, one id
        per treated unit), ``round`` (1..ratio), ``distance`` (``|d_c - d_t|``).

    Notes
    -----
    R equivalent::

        matchit(treat ~ ..., data, method = "nearest", distance = "glm",
                link = "linear.logit", caliper = 0.2, std.caliper = TRUE,
                m.order = "largest", ratio = 1, replace = FALSE)

    not MatchIt 4.5.1's vector fast path (``nn_matchC_vec``), which truncates distance
    differences to integers (MatchIt issue #163); it is reproduced by
    ``matchit(..., distance = <|d_i - d_j| matrix>, caliper = <width>, std.caliper = FALSE)``.
    """
    index = distance.index if isinstance(distance, pd.Series) else None
    d = np.asarray(distance, dtype=float)
    t = np.asarray(treated)
    tp, cp, rd, df = match_nearest_arrays(
        d, t, caliper, std_caliper, order, ratio, replace, random_state
    )
    ids = np.unique(tp)
    pair_id = np.searchsorted(ids, tp) + 1
    o = np.lexsort((rd, pair_id))
    lab = np.asarray(index) if index is not None else np.arange(d.size)
    return pd.DataFrame(
        {
            "treated_index": lab[tp[o]],
            "control_index": lab[cp[o]],
            "pair_id": pair_id[o].astype(np.int64),
            "round": (rd[o] + 1).astype(np.int64),
            "distance": df[o],
        }
    )


# ---------------------------------------------------------------------------
# Workflow steps on the analysis dataset (results/cohort/analysis.parquet)
SCORE_COLUMNS = ("patient_key", "site", "treated", "ps", "logit", "distance")


def run_propensity(
    analysis: pd.DataFrame,
    covariates: Sequence[str],
    treatment: str = "treated",
    distance: str = "logit",
    reference: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fit the propensity model on the analysis dataset.

    Returns
    -------
    coefficients : DataFrame
        ``term``, ``variable``, ``level``, ``estimate``, ``std_error``, ``z``, ``p_value``
        (written to ``results/matching/propensity.parquet``).
    scores : DataFrame
        One row per patient: ``patient_key``, ``site``, ``treated``, ``ps``, ``logit`` and
        ``distance`` (the configured matching scale: ``logit`` or ``ps``), in the row order
        of ``analysis`` (written to ``results/matching/scores.parquet``).
    """
    if distance not in ("logit", "ps"):
        raise MatchingError(f"matching.distance must be 'logit' or 'ps', got {distance!r}")
    model = fit_propensity(analysis, treatment, covariates, reference=reference)
    scores = pd.DataFrame(
        {
            "patient_key": analysis["patient_key"].astype("string").to_numpy(),
            "site": analysis["site"].astype("string").to_numpy(),
            "treated": analysis[treatment].to_numpy().astype(np.int64),
            "ps": model.ps.to_numpy(),
            "logit": model.logit.to_numpy(),
        }
    )
    scores["distance"] = scores[distance]
    coefs = model.coefficients.copy()
    for c in ("term", "variable", "level"):
        coefs[c] = coefs[c].astype("string")
    return coefs, scores


def run_matching(
    analysis: pd.DataFrame,
    scores: pd.DataFrame,
    caliper: float | None = 0.2,
    std_caliper: bool = True,
    order: str = "largest",
    ratio: int = 1,
    replace: bool = False,
    random_state=None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match on ``scores.distance`` and build the pairs and the matched analysis rows.

    Returns
    -------
    pairs : DataFrame
        ``pair_id``, ``round``, ``treated_key``, ``control_key``, ``treated_distance``,
        ``control_distance``, ``distance`` (``|difference|``), ``caliper_width``.
    matched : DataFrame
        The analysis rows of every matched patient (treated first, then controls, by
        ``pair_id``) with ``pair_id``, ``ps``, ``logit`` and ``match_weight`` (1 for treated;
        ``1 / number of controls of the pair`` for controls, MatchIt's ATT weights up to
        normalisation). With ``replace=True`` a control can appear in several pairs.
    """
    keys_a = analysis["patient_key"].astype("string").to_numpy()
    keys_s = scores["patient_key"].astype("string").to_numpy()
    if len(keys_a) != len(keys_s) or not (keys_a == keys_s).all():
        raise MatchingError(
            "scores.parquet and analysis.parquet list different patients or a different "
            "order (rule: match); rerun the propensity step"
        )
    d = scores["distance"].to_numpy(dtype=float)
    t = scores["treated"].to_numpy()
    width = caliper_width(d, caliper, std_caliper)
    m = match_nearest(
        d,
        t,
        caliper=caliper,
        std_caliper=std_caliper,
        order=order,
        ratio=ratio,
        replace=replace,
        random_state=random_state,
    )
    ti = m["treated_index"].to_numpy()
    ci = m["control_index"].to_numpy()
    pairs = pd.DataFrame(
        {
            "pair_id": m["pair_id"].to_numpy(),
            "round": m["round"].to_numpy(),
            "treated_key": pd.array(keys_s[ti], dtype="string"),
            "control_key": pd.array(keys_s[ci], dtype="string"),
            "treated_distance": d[ti],
            "control_distance": d[ci],
            "distance": m["distance"].to_numpy(),
            "caliper_width": np.full(len(m), width),
        }
    )
    n_ctrl = pairs.groupby("pair_id")["control_key"].transform("size").to_numpy()
    tr = pairs.drop_duplicates("pair_id")
    rows = np.r_[ti[tr.index.to_numpy()], ci]
    pid = np.r_[tr["pair_id"].to_numpy(), pairs["pair_id"].to_numpy()]
    weight = np.r_[np.ones(len(tr)), 1.0 / n_ctrl]
    matched = analysis.iloc[rows].reset_index(drop=True).copy()
    matched["pair_id"] = pid.astype(np.int64)
    matched["ps"] = scores["ps"].to_numpy()[rows]
    matched["logit"] = scores["logit"].to_numpy()[rows]
    matched["match_weight"] = weight
    grp = np.r_[np.zeros(len(tr), dtype=int), np.ones(len(ci), dtype=int)]
    order_rows = np.lexsort((grp, matched["pair_id"].to_numpy()))
    return pairs, matched.iloc[order_rows].reset_index(drop=True)
