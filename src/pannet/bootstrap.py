"""Bootstrap confidence intervals of the matched effect estimates, batch-invariant.

Two resampling schemes (``bootstrap.scheme``):

``pairs``
    Resample the matched pairs with replacement (Austin & Small 2014, Stat Med 33:1010);
    the propensity model and the matching are taken as fixed.
``full``
    Resample the analysis cohort (patients) with replacement, refit the propensity model,
    rematch (1:1 greedy, caliper, MatchIt semantics) and re-estimate: the uncertainty of
    the whole matched analysis.

Replicate ``r`` draws its resample from ``numpy.random.SeedSequence(seed).spawn(B)[r]``
(= ``SeedSequence(seed, spawn_key=(r,))``) and the numerics of :mod:`pannet.fastpath` are
row-independent, so replicate ``r`` gives the same bits whatever the batch size, the
number of cores or the executor. Per replicate: Cox log hazard ratio and hazard ratio
(treated vs control, Efron ties), difference in median survival, in survival at the
horizon and in restricted mean survival time to tau (treated minus control), and the
number of matched pairs.

Intervals (:func:`summarise`): percentile (R ``quantile`` type 7 of the finite replicate
values) and BCa (Efron 1987): bias correction ``z0 = qnorm(p)`` with ``p`` the share of
replicates below the observed estimate (ties counted half), acceleration from the
jackknife over the resampled units (leave one pair out for ``pairs``; leave one patient
out, with refit and rematch, for ``full``): ``a = sum(u^3) / (6 sum(u^2)^1.5)``,
``u_i = mean(theta_(.)) - theta_(i)``. Above ``bootstrap.jackknife_groups`` units the
jackknife deletes one of that many groups at a time instead (Efron & Tibshirani 1993,
ch. 11.5), so the summary costs O(n), not O(n^2).

:func:`replicate_main` computes one replicate with the main-path functions
(:mod:`pannet.matching`, :mod:`pannet.km`, :mod:`pannet.cox`) on the resampled rows; the
tests check that the fast path equals it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from pannet import fastpath

SCHEMES = ("pairs", "full")
# Distances are rounded to this many decimals before matching (both paths). The fitted
# propensity of a covariate cell often equals the cell's observed share exactly (a level
# seen in one cell only), so different cells can tie mathematically; floating-point noise
# (~1e-14, different in every implementation) would otherwise order them at random
# instead of in data order.
DIST_DECIMALS = 9
ESTIMATES = fastpath.ESTIMATES


class BootstrapError(ValueError):
    """Bad bootstrap input or configuration (the message names file, column and rows)."""


def replicate_seed(seed: int, r: int) -> np.random.SeedSequence:
    """The seed sequence of replicate ``r``: ``SeedSequence(seed).spawn(B)[r]`` for any B > r."""
    return np.random.SeedSequence(seed, spawn_key=(int(r),))


def batch_ranges(replicates: int, batch_size: int) -> list[tuple[int, int]]:
    """``[first, stop)`` replicate ranges of the batches, in order."""
    if replicates < 1 or batch_size < 1:
        raise BootstrapError(
            f"bootstrap.replicates ({replicates}) and bootstrap.batch_size ({batch_size}) must be >= 1"
        )
    return [(a, min(a + batch_size, replicates)) for a in range(0, replicates, batch_size)]


# ---------------------------------------------------------------------------
# Data
@dataclass
class BootstrapData:
    """What a scheme resamples, as arrays (built once per job)."""

    scheme: str
    time: np.ndarray
    event: np.ndarray
    treated: np.ndarray
    X: np.ndarray | None = None  # full: design matrix of the propensity model
    pair: np.ndarray | None = None  # pairs: 0-based pair index of each row
    n_pairs: int = 0
    source: str = ""


def _check_columns(df: pd.DataFrame, cols: Sequence[str], source: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise BootstrapError(f"{source}: column(s) {missing} missing (rule bootstrap)")
    for c in cols:
        bad = df[c].isna().to_numpy()
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            where = df["site"].iloc[rows].tolist() if "site" in df.columns else []
            raise BootstrapError(
                f"{source}: column '{c}' has missing values at rows {rows}"
                + (f" (sites {where})" if where else "")
                + " (rule bootstrap)"
            )


def prepare(
    df: pd.DataFrame,
    scheme: str,
    covariates: Sequence[str] = (),
    endpoint: str = "os",
    source: str = "",
    reference: Mapping[str, str] | None = None,
) -> BootstrapData:
    """Arrays of one scheme from its table.

    ``pairs`` takes the matched table (``results/matching/matched.parquet``: one row per
    matched patient, ``pair_id``); ``full`` the analysis table
    (``results/cohort/analysis.parquet``) and the propensity covariates (coded against
    ``reference`` levels as the main propensity model is; fitted values do not depend on
    the choice).
    """
    if scheme not in SCHEMES:
        raise BootstrapError(f"bootstrap.scheme must be one of {SCHEMES}; got {scheme!r}")
    tcol, ecol = f"{endpoint}_years", f"{endpoint}_event"
    need = [tcol, ecol, "treated"] + (["pair_id"] if scheme == "pairs" else list(covariates))
    _check_columns(df, need, source)
    time = df[tcol].to_numpy(dtype=float)
    event = df[ecol].to_numpy(dtype=float)
    treated = df["treated"].to_numpy(dtype=float)
    for name, v, ok in (
        (tcol, time, np.isfinite(time) & (time >= 0)),
        (ecol, event, np.isin(event, (0.0, 1.0))),
        ("treated", treated, np.isin(treated, (0.0, 1.0))),
    ):
        if not ok.all():
            rows = np.flatnonzero(~ok)[:5].tolist()
            raise BootstrapError(
                f"{source}: column '{name}' has invalid values {v[rows].tolist()} at rows {rows} (rule bootstrap)"
            )
    data = BootstrapData(scheme, time, event, treated, source=source)
    if scheme == "pairs":
        pid = df["pair_id"].to_numpy()
        labels, pair = np.unique(pid, return_inverse=True)
        sizes = np.bincount(pair)
        tr_per = np.bincount(pair, weights=treated)
        bad = np.flatnonzero((sizes != 2) | (tr_per != 1))
        if bad.size:
            raise BootstrapError(
                f"{source}: pair_id {labels[bad[:5]].tolist()} are not 1 treated + 1 control (rule bootstrap)"
            )
        data.pair, data.n_pairs = pair, int(labels.size)
    else:
        from pannet.matching import design_matrix

        data.X, _ = design_matrix(df, list(covariates), reference=reference)
    return data


# ---------------------------------------------------------------------------
# Replicates
def draw(data: BootstrapData, seed: int, r: int) -> np.ndarray:
    """Resampled units of replicate ``r``: pair indices (pairs) or row positions (full)."""
    rng = np.random.default_rng(replicate_seed(seed, r))
    n = data.n_pairs if data.scheme == "pairs" else data.time.size
    return rng.integers(0, n, size=n)


def _estimate(data, idx, present, matching, horizon, tau):
    """Fast-path estimates of the resamples ``idx`` (B x units)."""
    n = data.time.size
    B = idx.shape[0]
    if data.scheme == "pairs":
        pc = np.zeros((B, data.n_pairs))
        np.add.at(pc, (np.repeat(np.arange(B), idx.shape[1])[present.ravel()], idx[present]), 1.0)
        counts = pc[:, data.pair]
        return fastpath.effect_estimates(
            counts, data.time, data.event, data.treated, present.sum(axis=1), horizon, tau
        )
    rows = np.repeat(np.arange(B), idx.shape[1])[present.ravel()]
    counts = np.bincount(rows * n + idx[present], minlength=B * n).reshape(B, n)
    _, eta, _ = fastpath.logistic_irls(data.X, data.treated, counts)
    dist = eta if matching.get("distance", "logit") == "logit" else fastpath.inverse_logit(eta)
    dist = np.round(dist, DIST_DECIMALS)
    partner = fastpath.greedy_match(
        np.take_along_axis(dist, idx, axis=1),
        data.treated[idx].astype(bool),
        present,
        caliper=matching.get("caliper", 0.2),
        std_caliper=matching.get("std_caliper", True),
        order=matching.get("order", "largest"),
    )
    mcounts, n_pairs = fastpath.matched_counts(partner, idx, n)
    return fastpath.effect_estimates(
        mcounts, data.time, data.event, data.treated, n_pairs, horizon, tau
    )


def _check_matching(matching: Mapping) -> None:
    if matching.get("ratio", 1) != 1 or matching.get("replace", False):
        raise BootstrapError(
            "bootstrap scheme 'full' supports matching.ratio = 1 and matching.replace = false only"
        )
    if matching.get("order", "largest") not in ("largest", "smallest", "data"):
        raise BootstrapError(
            f"bootstrap scheme 'full' cannot reproduce matching.order = {matching.get('order')!r} "
            "(random orders need their own stream); use largest, smallest or data"
        )
    if matching.get("distance", "logit") not in ("logit", "ps"):
        raise BootstrapError(
            f"matching.distance must be logit or ps; got {matching.get('distance')!r}"
        )


def run_replicates(
    data: BootstrapData,
    replicates: Sequence[int],
    seed: int,
    matching: Mapping | None = None,
    horizon: float = 5.0,
    tau: float = 10.0,
    chunk: int = 250,
) -> pd.DataFrame:
    """Long table of the estimates of the given replicates: ``replicate, estimate, value``.

    Replicates are computed ``chunk`` at a time (memory bound only: results do not
    depend on it).
    """
    matching = dict(matching or {})
    if data.scheme == "full":
        _check_matching(matching)
    reps = np.asarray(list(replicates), dtype=np.int64)
    parts = []
    for a in range(0, reps.size, chunk):
        rr = reps[a : a + chunk]
        idx = np.stack([draw(data, seed, int(r)) for r in rr]) if rr.size else None
        if idx is None:
            continue
        est = _estimate(data, idx, np.ones(idx.shape, bool), matching, horizon, tau)
        parts.append(_long(rr, est))
    if not parts:
        return _long(np.empty(0, np.int64), {k: np.empty(0) for k in ESTIMATES})
    return pd.concat(parts, ignore_index=True)


def _long(reps: np.ndarray, est: Mapping[str, np.ndarray]) -> pd.DataFrame:
    k = len(ESTIMATES)
    return pd.DataFrame(
        {
            "replicate": np.repeat(reps, k).astype(np.int64),
            "estimate": pd.array(
                np.tile(np.array(ESTIMATES, dtype=object), reps.size), dtype="string"
            ),
            "value": np.column_stack([est[e] for e in ESTIMATES]).ravel().astype(float),
        }
    )


def observed(data: BootstrapData, matching: Mapping | None = None, horizon=5.0, tau=10.0) -> dict:
    """The estimates on the original data (no resampling), by the same fast path."""
    n = data.n_pairs if data.scheme == "pairs" else data.time.size
    idx = np.arange(n)[None, :]
    est = _estimate(data, idx, np.ones(idx.shape, bool), dict(matching or {}), horizon, tau)
    return {k: float(v[0]) for k, v in est.items()}


def jackknife(
    data: BootstrapData,
    matching: Mapping | None = None,
    horizon=5.0,
    tau=10.0,
    chunk: int = 100,
    groups: int | None = None,
) -> dict:
    """Jackknife estimates for the BCa acceleration: (n,) or (groups,) arrays.

    With ``n`` units (pairs, or patients for ``full``) and ``groups`` None or ``n <=
    groups``: leave one unit out (n re-estimates). Otherwise delete-a-group jackknife
    (Efron & Tibshirani 1993, ch. 11.5 and 14.3): unit ``i`` is in group ``i % groups``
    (deterministic; units are in pair or row order) and each group is left out once, so
    the cost is ``groups`` re-estimates instead of ``n`` (each O(n)): linear, not
    quadratic, in n. The acceleration formula is unchanged: with group sums of the
    empirical influence ``sum(u^3) / sum(u^2)^1.5`` still estimates the skewness of the
    influence over ``sqrt(n)``, with more noise than the full jackknife.
    """
    n = data.n_pairs if data.scheme == "pairs" else data.time.size
    if groups is not None and groups < 2:
        raise BootstrapError(f"bootstrap.jackknife_groups must be >= 2; got {groups}")
    grouped = groups is not None and n > groups
    k_out = int(groups) if grouped else n
    member = np.arange(n) % k_out if grouped else np.arange(n)
    out: dict[str, list] = {k: [] for k in ESTIMATES}
    for a in range(0, k_out, chunk):
        leave = np.arange(a, min(a + chunk, k_out))
        idx = np.broadcast_to(np.arange(n), (leave.size, n)).copy()
        present = member[None, :] != leave[:, None]
        est = _estimate(data, idx, present, dict(matching or {}), horizon, tau)
        for k in ESTIMATES:
            out[k].append(est[k])
    return {k: np.concatenate(v) for k, v in out.items()}


# ---------------------------------------------------------------------------
# Intervals
def bca_interval(values, theta_hat: float, jack, conf_level: float = 0.95) -> dict:
    """Percentile and BCa interval of one estimate from its replicate and jackknife values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    alpha = (1 - conf_level) / 2
    res = {
        "n_finite": int(v.size),
        "mean": float(v.mean()) if v.size else math.nan,
        "se": float(v.std(ddof=1)) if v.size > 1 else math.nan,
        "pct_lower": math.nan,
        "pct_upper": math.nan,
        "bca_lower": math.nan,
        "bca_upper": math.nan,
        "z0": math.nan,
        "acceleration": math.nan,
    }
    if v.size == 0:
        return res
    res["pct_lower"], res["pct_upper"] = (float(q) for q in np.quantile(v, [alpha, 1 - alpha]))
    if not math.isfinite(theta_hat):
        return res
    share = (np.sum(v < theta_hat) + 0.5 * np.sum(v == theta_hat)) / v.size
    nd = NormalDist()
    if not 0 < share < 1:
        return res
    z0 = nd.inv_cdf(share)
    j = np.asarray(jack, dtype=float)
    j = j[np.isfinite(j)]
    u = j.mean() - j if j.size else np.zeros(1)
    den = 6.0 * float(np.sum(u * u)) ** 1.5
    a = float(np.sum(u**3)) / den if den > 0 else 0.0
    za = nd.inv_cdf(alpha)
    probs = []
    for z in (za, -za):
        w = z0 + (z0 + z) / (1 - a * (z0 + z))
        probs.append(nd.cdf(w))
    res["bca_lower"], res["bca_upper"] = (float(q) for q in np.quantile(v, probs))
    res["z0"], res["acceleration"] = z0, a
    return res


def summarise(
    reps: pd.DataFrame,
    obs: Mapping[str, float],
    jack: Mapping[str, np.ndarray],
    conf_level: float = 0.95,
    scheme: str = "pairs",
    expected: int | None = None,
) -> pd.DataFrame:
    """One row per estimate: observed value, bootstrap SE and percentile and BCa intervals."""
    if expected is not None:
        got = np.sort(reps["replicate"].unique())
        if not np.array_equal(got, np.arange(expected)):
            missing = sorted(set(range(expected)) - set(got.tolist()))[:10]
            raise BootstrapError(
                f"bootstrap batches hold {got.size} replicates, expected 0..{expected - 1}; "
                f"missing e.g. {missing} (rule bootstrap_summary)"
            )
    rows = []
    for e in ESTIMATES:
        v = reps.loc[reps["estimate"] == e].sort_values("replicate")["value"].to_numpy()
        r = bca_interval(v, obs[e], jack[e], conf_level)
        rows.append(
            {
                "estimate": e,
                "observed": obs[e],
                "replicates": int(v.size),
                **r,
                "bias": r["mean"] - obs[e],
                "conf_level": conf_level,
                "scheme": scheme,
            }
        )
    df = pd.DataFrame(rows)
    df["estimate"] = df["estimate"].astype("string")
    df["scheme"] = df["scheme"].astype("string")
    return df


# ---------------------------------------------------------------------------
# A stand-in cohort (tests, benchmark)
def synthetic_cohort(n: int = 194, seed: int = 1) -> pd.DataFrame:
    """A random cohort shaped like ``analysis.parquet`` (Table 1 categories, treated, OS).

    SYNTHETIC: for tests and the benchmark when no demo run exists. OS times are whole
    days (as in the data), so tied times occur, and more so in a resample.
    """
    from pannet.cdm import TABLE1_LEVELS

    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {k: pd.array(rng.choice(v, n), dtype="string") for k, v in TABLE1_LEVELS.items()}
    )
    lin = -0.8 + 0.6 * (df.age_group == "<50") - 0.5 * (df.charlson_group == ">=4")
    df["treated"] = (rng.random(n) < 1 / (1 + np.exp(-lin.to_numpy(float)))).astype(np.int64)
    days = np.round(rng.exponential(2500 * (1 + 0.5 * df["treated"]), n)).clip(1)
    cens = np.round(rng.uniform(300, 7000, n))
    df["os_years"] = np.minimum(days, cens) / 365.25
    df["os_event"] = (days <= cens).astype(np.int64)
    df["site"] = pd.array(rng.choice(["uppsala", "gothenburg", "boston"], n), dtype="string")
    return df


def synthetic_matched(df: pd.DataFrame, covariates: Sequence[str]) -> pd.DataFrame:
    """The matched rows (with ``pair_id``) of a cohort, by the main-path matching."""
    from pannet import matching as match_mod

    X, _ = match_mod.design_matrix(df, list(covariates))
    fit = match_mod.fit_logistic(X, df["treated"].to_numpy(dtype=float))
    tp, cp, _, _ = match_mod.match_nearest_arrays(
        np.round(fit.linear_predictor, DIST_DECIMALS), df["treated"].to_numpy()
    )
    pid = np.arange(1, tp.size + 1)
    t = df.iloc[tp].assign(pair_id=pid)
    c = df.iloc[cp].assign(pair_id=pid)
    return pd.concat([t, c], ignore_index=True)


# ---------------------------------------------------------------------------
# Main path (reference for the tests): one replicate on the resampled rows
def replicate_main(
    data_df: pd.DataFrame,
    scheme: str,
    units: np.ndarray,
    covariates: Sequence[str] = (),
    matching: Mapping | None = None,
    horizon: float = 5.0,
    tau: float = 10.0,
    endpoint: str = "os",
) -> dict:
    """The estimates of one resample with the main-path functions on the duplicated rows.

    ``units`` is what :func:`draw` returns: pair indices (in sorted ``pair_id`` order) or
    row positions.
    """
    from pannet import cox as cox_mod
    from pannet import km
    from pannet import matching as match_mod

    matching = dict(matching or {})
    if scheme == "pairs":
        labels = np.unique(data_df["pair_id"].to_numpy())
        parts = [data_df[data_df["pair_id"] == labels[u]] for u in units]
        rows = pd.concat(parts, ignore_index=True)
        n_pairs = len(units)
    else:
        sample = data_df.iloc[np.asarray(units)].reset_index(drop=True)
        X, _ = match_mod.design_matrix(sample, list(covariates), matching.get("reference"))
        y = sample["treated"].to_numpy(dtype=float)
        fit = match_mod.fit_logistic(X, y)
        dist = fit.linear_predictor if matching.get("distance", "logit") == "logit" else fit.fitted
        tp, cp, _, _ = match_mod.match_nearest_arrays(
            np.round(dist, DIST_DECIMALS),
            y,
            caliper=matching.get("caliper", 0.2),
            std_caliper=matching.get("std_caliper", True),
            order=matching.get("order", "largest"),
        )
        rows = sample.iloc[np.concatenate([tp, cp])].reset_index(drop=True)
        n_pairs = tp.size
    t = rows[f"{endpoint}_years"].to_numpy(dtype=float)
    e = rows[f"{endpoint}_event"].to_numpy(dtype=float)
    g = rows["treated"].to_numpy(dtype=float)
    per = []
    for grp in (0.0, 1.0):
        st = km.km_steps(t[g == grp], e[g == grp])
        per.append(
            (
                float(km.km_quantiles(st, probs=[0.5])["est"][0]),
                float(km.km_at(st, [horizon])["est"][0]),
                km.km_rmst(st, tau)[0],
            )
        )
    log_hr = float(cox_mod.cox(t, e, g)["coef"][0])
    return {
        "log_hr": log_hr,
        "hr": math.exp(log_hr),
        "median_diff": per[1][0] - per[0][0],
        "survival_diff": per[1][1] - per[0][1],
        "rmst_diff": per[1][2] - per[0][2],
        "n_pairs": float(n_pairs),
    }


# ---------------------------------------------------------------------------
# Workflow steps
def _settings(config: Mapping) -> dict:
    b = config["bootstrap"]
    ep = b.get("endpoint", "os")
    surv = config.get("survival", {})
    return {
        "scheme": b["scheme"],
        "seed": int(b["seed"]),
        "endpoint": ep,
        "horizon": float(surv.get("horizons", {}).get(ep, 5)),
        "tau": float(surv.get("rmst_tau", {}).get(ep, 10)),
        "conf_level": float(b.get("conf_level", 0.95)),
        "jackknife_groups": int(b.get("jackknife_groups", 200)),
        "covariates": list(config.get("matching", {}).get("covariates", [])),
        "matching": dict(config.get("matching", {})),
    }


def load(path, config: Mapping) -> tuple[BootstrapData, dict]:
    """Read the scheme's input table and prepare it."""
    from pannet.io import read_parquet

    s = _settings(config)
    df = read_parquet(path)
    data = prepare(
        df,
        s["scheme"],
        s["covariates"],
        s["endpoint"],
        source=str(path),
        reference=s["matching"].get("reference"),
    )
    return data, s


def run_batch(path, config: Mapping, batch: int) -> pd.DataFrame:
    """The replicates of batch ``batch`` (0-based) as a long table."""
    b = config["bootstrap"]
    ranges = batch_ranges(int(b["replicates"]), int(b["batch_size"]))
    if not 0 <= batch < len(ranges):
        raise BootstrapError(
            f"batch {batch} out of range: {len(ranges)} batches (rule bootstrap_batch)"
        )
    data, s = load(path, config)
    first, stop = ranges[batch]
    return run_replicates(
        data, range(first, stop), s["seed"], s["matching"], s["horizon"], s["tau"]
    )


def run_summary(path, batch_paths: Sequence, config: Mapping) -> pd.DataFrame:
    """Gather the batches, compute the observed and jackknife estimates and the intervals."""
    from pannet.io import read_parquet

    data, s = load(path, config)
    reps = pd.concat([read_parquet(p) for p in batch_paths], ignore_index=True)
    obs = observed(data, s["matching"], s["horizon"], s["tau"])
    jack = jackknife(data, s["matching"], s["horizon"], s["tau"], groups=s["jackknife_groups"])
    out = summarise(
        reps,
        obs,
        jack,
        s["conf_level"],
        s["scheme"],
        expected=int(config["bootstrap"]["replicates"]),
    )
    out["endpoint"] = pd.array([s["endpoint"]] * len(out), dtype="string")
    out["horizon_years"] = s["horizon"]
    out["tau_years"] = s["tau"]
    return out
