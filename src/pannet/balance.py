"""Covariate balance: standardised mean differences (SMD) before and after matching.

- :func:`smd` - SMD of one binary indicator (a level) or one numeric variable, pooled SD.
- :func:`smd_overall` - Yang & Dalton (2012) multivariate SMD of a categorical variable.
- :func:`balance_table` - per level and overall SMDs, x 100 as the paper prints them.
- :func:`love_plot`, :func:`overlap_plot` - the balance figures (matplotlib, imported lazily).

The SMD is signed: treated (SG) minus control (non-SG).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def _group_arrays(x, treated) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float)
    t = np.asarray(treated).astype(bool)
    if x.shape != t.shape:
        raise ValueError("x and treated must have the same length")
    return x[t], x[~t]


def smd(x, treated, binary: bool | None = None) -> float:
    """Standardised mean difference of ``x`` between treated and control, pooled SD.

    Binary ``x`` (a 0/1 level indicator):
    ``(p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2)``;
    numeric ``x``: ``(m1 - m0) / sqrt((s1^2 + s0^2) / 2)`` with ``n - 1`` variances.
    0 when both groups are equal (also when the pooled SD is 0).

    Parameters
    ----------
    x : array-like
        Values per unit.
    treated : array-like of 0/1
    binary : bool, optional
        Force the formula; default: binary when ``x`` only holds 0 and 1.

    Notes
    -----
    R equivalent (binary)::

        p1 <- mean(x[t == 1]); p0 <- mean(x[t == 0])
        (p1 - p0) / sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)

    which is ``tableone::ExtractSmd`` (sign aside) and ``cobalt::col_w_smd(x, t,
    s.d.denom = "pooled", bin.vars = TRUE)``; for numeric ``x`` the same with ``var()``.
    """
    x1, x0 = _group_arrays(x, treated)
    if binary is None:
        binary = bool(np.isin(np.r_[x1, x0], (0.0, 1.0)).all())
    m1, m0 = x1.mean(), x0.mean()
    if binary:
        v1, v0 = m1 * (1 - m1), m0 * (1 - m0)
    else:
        v1, v0 = x1.var(ddof=1), x0.var(ddof=1)
    diff = m1 - m0
    if diff == 0:
        return 0.0
    sd = np.sqrt((v1 + v0) / 2.0)
    return float(diff / sd) if sd > 0 else float(np.sign(diff) * np.inf)


def smd_overall(x, treated, levels: Sequence[str] | None = None) -> float:
    """Yang & Dalton (2012) SMD of a categorical variable with k levels.

    ``sqrt((p1 - p0)' S^-1 (p1 - p0))`` over the proportions of levels 2..k, with
    ``S = (S1 + S0) / 2`` and ``S_g[i, i] = p_i (1 - p_i)``, ``S_g[i, j] = -p_i p_j``.
    For two levels it equals ``|smd|`` of either level. Levels absent from both groups
    are dropped (they add no information and make ``S`` singular).

    Notes
    -----
    R equivalent (``tableone:::StdDiffMulti``)::

        T <- p1[-1] - p0[-1]
        S1 <- -outer(p1[-1], p1[-1]); diag(S1) <- p1[-1] * (1 - p1[-1])   # same for S0
        sqrt(drop(t(T) %*% MASS::ginv((S1 + S0) / 2) %*% T))
    """
    s = pd.Series(np.asarray(x)).astype("string")
    t = np.asarray(treated).astype(bool)
    lv = list(levels) if levels is not None else sorted(s.dropna().unique())
    p1 = np.array([(s[t] == v).mean() for v in lv], dtype=float)
    p0 = np.array([(s[~t] == v).mean() for v in lv], dtype=float)
    keep = (p1 + p0) > 0
    p1, p0 = p1[keep], p0[keep]
    if p1.size < 2:
        return 0.0
    d = (p1 - p0)[1:]
    a1, a0 = p1[1:], p0[1:]
    S = (np.diag(a1) - np.outer(a1, a1) + np.diag(a0) - np.outer(a0, a0)) / 2.0
    # pinv as tableone uses MASS::ginv: S is singular when one group lacks a level
    val = float(d @ np.linalg.pinv(S) @ d)
    return float(np.sqrt(max(val, 0.0)))


def balance_table(
    before: pd.DataFrame,
    after: pd.DataFrame,
    covariates: Sequence[str],
    treatment: str = "treated",
    levels: Mapping[str, Sequence[str]] | None = None,
    distance: str | None = None,
    flag: float = 10.0,
) -> pd.DataFrame:
    """SMDs (x 100) per level and overall, before and after matching.

    Parameters
    ----------
    before, after : DataFrame
        Unmatched and matched samples (columns ``covariates`` and ``treatment``).
    covariates : sequence of str
        Categorical covariates (each level a row) or numeric ones (one row).
    levels : mapping, optional
        Ordered levels per covariate (default: :data:`pannet.cdm.TABLE1_LEVELS`, else sorted).
    distance : str, optional
        Also a row for this numeric column (e.g. the logit of the PS).
    flag : float
        ``|SMD| x 100`` above which a row is flagged imbalanced (10 = 0.1).

    Returns
    -------
    DataFrame
        ``variable``, ``level`` (None on ``kind="overall"`` rows and numeric variables),
        ``kind`` ("level" | "overall" | "numeric"), ``smd_before``, ``smd_after`` (signed,
        x 100; overall rows are non-negative), ``flag_before``, ``flag_after``
        (``|SMD| > flag``), ``n_levels``.
    """
    from pannet.cdm import TABLE1_LEVELS

    levels = {**TABLE1_LEVELS, **dict(levels or {})}
    tb = before[treatment].to_numpy()
    ta = after[treatment].to_numpy()
    rows: list[dict] = []
    for cov in covariates:
        if pd.api.types.is_numeric_dtype(before[cov]) and not pd.api.types.is_bool_dtype(
            before[cov]
        ):
            rows.append(
                {
                    "variable": cov,
                    "level": None,
                    "kind": "numeric",
                    "smd_before": 100 * smd(before[cov], tb, binary=False),
                    "smd_after": 100 * smd(after[cov], ta, binary=False),
                    "n_levels": 0,
                }
            )
            continue
        lv = list(levels.get(cov) or sorted(before[cov].astype("string").dropna().unique()))
        xb = before[cov].astype("string").to_numpy()
        xa = after[cov].astype("string").to_numpy()
        for level in lv:
            rows.append(
                {
                    "variable": cov,
                    "level": level,
                    "kind": "level",
                    "smd_before": 100 * smd((xb == level).astype(float), tb, binary=True),
                    "smd_after": 100 * smd((xa == level).astype(float), ta, binary=True),
                    "n_levels": len(lv),
                }
            )
        if len(lv) > 2:
            rows.append(
                {
                    "variable": cov,
                    "level": None,
                    "kind": "overall",
                    "smd_before": 100 * smd_overall(xb, tb, lv),
                    "smd_after": 100 * smd_overall(xa, ta, lv),
                    "n_levels": len(lv),
                }
            )
    if distance is not None:
        rows.append(
            {
                "variable": distance,
                "level": None,
                "kind": "numeric",
                "smd_before": 100 * smd(before[distance], tb, binary=False),
                "smd_after": 100 * smd(after[distance], ta, binary=False),
                "n_levels": 0,
            }
        )
    out = pd.DataFrame(
        rows, columns=["variable", "level", "kind", "smd_before", "smd_after", "n_levels"]
    )
    out["level"] = out["level"].astype("string")
    out["flag_before"] = out["smd_before"].abs() > flag
    out["flag_after"] = out["smd_after"].abs() > flag
    out["n_levels"] = out["n_levels"].astype("int64")
    return out


def love_plot(balance: pd.DataFrame, path, flag: float = 10.0, title: str | None = None) -> None:
    """Love plot: |SMD| x 100 per level before (open) and after (filled) matching (PNG, 300 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pannet.io import save_figure

    b = balance[balance["kind"] != "overall"].iloc[::-1]
    labels = [
        f"{v}: {lv}" if isinstance(lv, str) else str(v)
        for v, lv in zip(b["variable"], b["level"], strict=True)
    ]
    y = np.arange(len(b))
    fig, ax = plt.subplots(figsize=(6.5, 0.22 * len(b) + 1.4))
    ax.scatter(
        b["smd_before"].abs(), y, facecolors="none", edgecolors="#b2182b", label="before matching"
    )
    ax.scatter(b["smd_after"].abs(), y, color="#2166ac", label="after matching")
    ax.axvline(flag, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlabel("absolute standardised mean difference (x 100)")
    ax.legend(loc="upper right", fontsize=7, frameon=True)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, fmt="png")
    plt.close(fig)


def overlap_plot(
    scores: pd.DataFrame,
    matched_keys,
    path,
    score: str = "ps",
    treatment: str = "treated",
    key: str = "patient_key",
    labels: tuple[str, str] = ("SG", "non-SG"),
    title: str | None = None,
) -> None:
    """Propensity score distributions by group, before and after matching (PNG, 300 dpi)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pannet.io import save_figure

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=False)
    in_match = scores[key].isin(set(matched_keys))
    bins = np.linspace(0, 1, 26) if score == "ps" else 25
    for ax, sub, name in (
        (axes[0], scores, "before matching"),
        (axes[1], scores[in_match], "after matching"),
    ):
        t = sub[treatment].astype(bool)
        ax.hist(
            sub.loc[t, score],
            bins=bins,
            alpha=0.6,
            color="#b2182b",
            label=f"{labels[0]} (n={int(t.sum())})",
        )
        ax.hist(
            sub.loc[~t, score],
            bins=bins,
            alpha=0.6,
            color="#2166ac",
            label=f"{labels[1]} (n={int((~t).sum())})",
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("propensity score" if score == "ps" else score)
        ax.legend(fontsize=7, frameon=False)
    axes[0].set_ylabel("patients")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, fmt="png")
    plt.close(fig)


def run_balance(
    analysis: pd.DataFrame,
    scores: pd.DataFrame,
    matched: pd.DataFrame,
    covariates: Sequence[str],
    flag: float = 10.0,
) -> pd.DataFrame:
    """Balance table of the workflow: the covariates and the logit of the PS, before/after.

    ``analysis`` and ``scores`` are row-aligned (the propensity step keeps the order).
    """
    before = analysis.assign(logit=scores["logit"].to_numpy())
    return balance_table(
        before, matched, covariates, treatment="treated", distance="logit", flag=flag
    )
