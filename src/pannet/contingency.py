"""Group comparison tests on contingency tables (Table 1, Table 2).

- :func:`chi2_test` - Pearson's chi-square test without continuity correction
  (R ``chisq.test(x, correct = FALSE)``).
- :func:`fisher_test` - Fisher's exact test for any r x c table, two-sided, summing the
  probabilities of all tables with the observed margins that are no more probable than
  the observed one (R ``fisher.test(x)``, including its relative tolerance 1e-7).
- :func:`compare_groups` - the study's rule: chi-square, or Fisher when an expected count
  is below 5 (``rule="auto"``); returns the test used with the result.
"""

from __future__ import annotations

from math import lgamma

import numpy as np
import pandas as pd

RULES = ("auto", "chi2", "fisher")
# R fisher.test: tables within this relative tolerance of the observed probability count as
# "as extreme" (guards against floating-point ties)
_FISHER_REL_ERR = 1 + 1e-7
_MAX_TABLES = 20_000_000


class ContingencyError(ValueError):
    """A table that cannot be tested (negative or non-integer counts, too large for exact)."""


def _as_table(table) -> np.ndarray:
    x = np.asarray(table, dtype=float)
    if x.ndim != 2:
        raise ContingencyError(f"a contingency table must be 2-d, got shape {x.shape}")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ContingencyError("contingency table counts must be non-negative integers")
    # an all-zero row or column (a level nobody has) carries no information and makes the
    # expected counts 0; both tests are defined on the table without it
    x = x[x.sum(axis=1) > 0][:, x.sum(axis=0) > 0]
    return x.astype(np.int64)


def expected_counts(table) -> np.ndarray:
    """Expected counts under independence: ``outer(row sums, column sums) / n``."""
    x = _as_table(table)
    n = x.sum()
    return np.outer(x.sum(axis=1), x.sum(axis=0)) / n if n else np.zeros(x.shape)


def chi2_test(table) -> dict:
    """Pearson's chi-square test of independence, no continuity correction.

    Returns
    -------
    dict
        ``statistic``, ``df``, ``p``, ``expected_min``.

    Notes
    -----
    R equivalent: ``chisq.test(x, correct = FALSE)``.
    """
    from scipy.stats import chi2

    x = _as_table(table)
    if min(x.shape) < 2:
        return {"statistic": float("nan"), "df": 0, "p": float("nan"), "expected_min": float("nan")}
    e = expected_counts(x)
    stat = float(((x - e) ** 2 / e).sum())
    df = (x.shape[0] - 1) * (x.shape[1] - 1)
    return {
        "statistic": stat,
        "df": df,
        "p": float(chi2.sf(stat, df)),
        "expected_min": float(e.min()),
    }


def _log_fact(n: int) -> np.ndarray:
    return np.array([lgamma(i + 1.0) for i in range(n + 1)])


def _enumerate_column1(rows: np.ndarray, cap: int, lf: np.ndarray):
    """Every column-1 allocation of ``rows``: its total and log weight ``-sum log(k! (r-k)!)``."""
    s = np.zeros(1, dtype=np.int64)
    w = np.zeros(1)
    for ri in rows:
        k = np.arange(ri + 1)
        s = (s[:, None] + k[None, :]).ravel()
        w = (w[:, None] - (lf[k] + lf[ri - k])[None, :]).ravel()
        ok = s <= cap
        s, w = s[ok], w[ok]
        if s.size > _MAX_TABLES:
            raise ContingencyError("table too large for the exact test")
    return s, w


def _fisher_two_col(x: np.ndarray) -> float:
    """Exact p for an r x 2 table by meet in the middle.

    The rows are split in two halves; each half's column-1 allocations are enumerated, and
    for every allocation of the first half the second-half allocations that complete the
    margin and keep the table no more probable than the observed are summed from sorted
    cumulative sums. Cost about the square root of the number of tables.
    """
    rows = x.sum(axis=1)
    c1 = int(x[:, 0].sum())
    lf = _log_fact(int(rows.sum()))
    w_obs = -float((lf[x[:, 0]] + lf[x[:, 1]]).sum())
    h = len(rows) // 2
    sa, wa = _enumerate_column1(rows[:h], c1, lf)
    sb, wb = _enumerate_column1(rows[h:], c1, lf)
    o = np.lexsort((wb, sb))
    sb, wb = sb[o], wb[o]
    eb = np.exp(wb - wb.max())
    limit = w_obs + np.log(_FISHER_REL_ERR)
    num = 0.0
    den = 0.0
    for s_a in np.unique(sa):
        lo, hi = np.searchsorted(sb, [c1 - s_a, c1 - s_a + 1])
        if lo == hi:
            continue
        sel = sa == s_a
        ea = np.exp(wa[sel] - wa.max())
        # prefix sums within the segment, smallest first, so that tail sums keep their
        # precision (a global cumulative sum would cancel them away)
        cum = np.r_[0.0, np.cumsum(eb[lo:hi])]
        den += ea.sum() * cum[-1]
        cut = np.searchsorted(wb[lo:hi], limit - wa[sel], side="right")
        num += float((ea * cum[cut]).sum())
    return float(min(1.0, num / den))


def _p_from_logweights(w: np.ndarray, w_obs: float) -> float:
    m = w.max()
    dens = np.exp(w - m)
    obs = np.exp(w_obs - m)
    p = dens[dens <= obs * _FISHER_REL_ERR].sum() / dens.sum()
    return float(min(1.0, p))


def _compositions(total: int, caps: np.ndarray) -> np.ndarray:
    """All vectors k >= 0 with sum ``total`` and ``k <= caps`` (shape (K, len(caps)))."""
    out = np.zeros((1, 0), dtype=np.int64)
    for j, cap in enumerate(caps):
        if j == len(caps) - 1:
            last = total - out.sum(axis=1)
            ok = (last >= 0) & (last <= cap)
            return np.c_[out[ok], last[ok]]
        k = np.arange(min(int(cap), total) + 1)
        out = np.c_[np.repeat(out, k.size, axis=0), np.tile(k, out.shape[0])]
        out = out[out.sum(axis=1) <= total]
    return out


def _fisher_general(x: np.ndarray) -> float:
    """Exact p for an r x c table: enumerate rows as compositions within the column sums.

    States are (remaining column sums, log weight) arrays, expanded row by row in numpy;
    every table keeps its own weight, as the p-value thresholds each table's probability.
    """
    if x.shape[1] > x.shape[0]:
        x = x.T.copy()
    rows = x.sum(axis=1)
    cols = x.sum(axis=0)
    lf = _log_fact(int(rows.sum()))
    rem = cols[None, :].astype(np.int64)
    w = np.zeros(1)
    for ri in rows[:-1]:
        comps = _compositions(int(ri), cols)
        cost = lf[comps].sum(axis=1)
        chunk = max(1, 4_000_000 // max(1, comps.shape[0] * comps.shape[1]))
        new_rem, new_w = [], []
        for s0 in range(0, rem.shape[0], chunk):
            r = rem[s0 : s0 + chunk]
            ok = (r[:, None, :] >= comps[None, :, :]).all(axis=2)
            si, ki = np.nonzero(ok)
            new_rem.append(r[si] - comps[ki])
            new_w.append(w[s0 : s0 + chunk][si] - cost[ki])
        rem = np.concatenate(new_rem)
        w = np.concatenate(new_w)
        if w.size > _MAX_TABLES:
            raise ContingencyError(f"table {x.tolist()} is too large for the exact test")
    w = w - lf[rem].sum(axis=1)  # the last row is what remains
    w_obs = -float(lf[x].sum())
    return _p_from_logweights(w, w_obs)


def fisher_test(table) -> dict:
    """Fisher's exact test, two-sided, for an r x c table.

    Returns
    -------
    dict
        ``statistic`` (the conditional probability of the observed table, NaN for 2x2 where
        R reports the odds ratio - see ``odds_ratio``), ``p``, ``expected_min``.

    Notes
    -----
    R equivalent: ``fisher.test(x)$p.value`` (exact network algorithm; the p-value is the
    sum of the probabilities of tables no more likely than the observed, with relative
    tolerance ``1 + 1e-7``).
    """
    x = _as_table(table)
    if min(x.shape) < 2:
        return {"statistic": float("nan"), "p": 1.0, "expected_min": float("nan")}
    if x.shape[1] == 2:
        p = _fisher_two_col(x)
    elif x.shape[0] == 2:
        p = _fisher_two_col(x.T.copy())
    else:
        p = _fisher_general(x)
    out = {"statistic": float("nan"), "p": p, "expected_min": float(expected_counts(x).min())}
    if x.shape == (2, 2):
        a, b, c, d = x.ravel().tolist()
        out["odds_ratio_sample"] = (a * d) / (b * c) if b * c else float("inf")
    return out


def choose_test(expected_min: float, rule: str = "auto", expected_below: float = 5.0) -> str:
    """The test the rule picks: ``auto`` -> "fisher" when an expected count < threshold."""
    if rule not in RULES:
        raise ContingencyError(f"test rule must be one of {RULES}, got {rule!r}")
    if rule != "auto":
        return rule
    return "fisher" if expected_min < expected_below else "chi2"


def crosstab(x, group) -> pd.DataFrame:
    """Counts table of ``x`` (rows, in order of appearance or categories) by ``group``."""
    return pd.crosstab(
        pd.Series(np.asarray(x), name="x"), pd.Series(np.asarray(group), name="group")
    )


def compare_groups(
    table=None,
    *,
    x=None,
    group=None,
    rule: str = "auto",
    expected_below: float = 5.0,
) -> dict:
    """Compare a categorical variable between groups with the study's test rule.

    Give either ``table`` (counts, levels x groups, array or DataFrame) or ``x`` and
    ``group`` (one value per unit).

    Parameters
    ----------
    rule : {"auto", "chi2", "fisher"}
        ``auto``: Pearson chi-square without continuity correction, or Fisher's exact test
        when any expected count is below ``expected_below``.
    expected_below : float
        Threshold of the ``auto`` rule (5).

    Returns
    -------
    dict
        ``test`` ("chi2" | "fisher"), ``rule``, ``statistic`` (chi-square; NaN for Fisher),
        ``df``, ``p``, ``expected_min``.

    Notes
    -----
    R equivalent::

        e <- suppressWarnings(chisq.test(tab, correct = FALSE))$expected
        if (min(e) < 5) fisher.test(tab) else chisq.test(tab, correct = FALSE)
    """
    if table is None:
        if x is None or group is None:
            raise ContingencyError("give a counts table, or both x and group")
        table = crosstab(x, group)
    t = _as_table(np.asarray(table))
    e_min = float(expected_counts(t).min()) if t.size else float("nan")
    test = choose_test(e_min, rule, expected_below)
    res = chi2_test(t) if test == "chi2" else fisher_test(t)
    return {
        "test": test,
        "rule": rule,
        "statistic": res["statistic"],
        "df": res.get("df", (t.shape[0] - 1) * (t.shape[1] - 1)),
        "p": res["p"],
        "expected_min": e_min,
    }


def format_p(p: float, digits: int = 3) -> str:
    """As the publication prints p: three decimals, ``<0.001`` below that."""
    if p is None or not np.isfinite(p):
        return ""
    floor = 10.0**-digits
    return f"<{floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"
