"""Equipoise, overlap and generalizability of the propensity-score matched comparison.

- The preference score (Walker et al. 2013, Comp Eff Res 3:11) removes the effect of the
  treated share P on the propensity score: ``logit(F) = logit(PS) - logit(P)``. Patients
  with F in [0.3, 0.7] are those for whom either choice was plausible; the share of the
  population there is OHDSI's "equipoise" diagnostic (Walker's own rule asks for at least
  half of each group).
- The caliper drops treated patients with no control close enough: the matched effect then
  describes the matched treated, not all treated.
- The generalizability table sets the matched cohort beside the full eligible cohort
  (and the matched treated beside all treated) with standardized mean differences, since
  the study names generalizability as its limit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = [
    "preference_score",
    "equipoise_summary",
    "preference_histogram",
    "caliper_summary",
    "smd_proportion",
    "generalizability_table",
    "plot_preference",
]


def preference_score(ps, treated) -> np.ndarray:
    """Walker's preference score: ``expit(logit(ps) - logit(mean(treated)))``.

    Parameters
    ----------
    ps : array-like
        Propensity scores in (0, 1).
    treated : array-like of 0/1
        Treatment indicator of the same patients (gives the treated share P).
    """
    ps = np.asarray(ps, dtype=float)
    t = np.asarray(treated, dtype=float)
    if ps.shape != t.shape:
        raise ValueError(f"ps ({ps.shape}) and treated ({t.shape}) differ in shape")
    if np.any((ps <= 0) | (ps >= 1)) or np.any(np.isnan(ps)):
        raise ValueError("propensity scores must lie strictly inside (0, 1)")
    share = t.mean()
    if share in (0.0, 1.0):
        raise ValueError("both groups must be present to compute the preference score")
    x = np.log(ps / (1 - ps)) - np.log(share / (1 - share))
    return 1 / (1 + np.exp(-x))


def equipoise_summary(ps, treated, bounds=(0.3, 0.7)) -> pd.DataFrame:
    """Share of patients with preference score within ``bounds`` (inclusive).

    Returns
    -------
    pandas.DataFrame
        Rows ``all``, ``treated``, ``control``: n, n_in_bounds, share_in_bounds, and
        the preference-score quartiles of the group.
    """
    lo, hi = bounds
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"equipoise bounds must satisfy 0 <= low < high <= 1, got {bounds}")
    f = preference_score(ps, treated)
    t = np.asarray(treated).astype(int)
    rows = []
    for name, mask in (("all", np.ones_like(t, bool)), ("treated", t == 1), ("control", t == 0)):
        fx = f[mask]
        inside = int(((fx >= lo) & (fx <= hi)).sum())
        q = np.quantile(fx, [0.25, 0.5, 0.75])
        rows.append(
            {
                "group": name,
                "n": int(mask.sum()),
                "n_in_bounds": inside,
                "share_in_bounds": inside / mask.sum(),
                "lower_bound": lo,
                "upper_bound": hi,
                "pref_q1": q[0],
                "pref_median": q[1],
                "pref_q3": q[2],
            }
        )
    return pd.DataFrame(rows)


def preference_histogram(ps, treated, bins: int = 20) -> pd.DataFrame:
    """Counts of patients per preference-score bin and group (equal bins on [0, 1]).

    An aggregate form of the preference-score distribution that can be shared after small
    counts are suppressed (:func:`pannet.share.suppress_small_counts`).
    """
    f = preference_score(ps, treated)
    t = np.asarray(treated).astype(int)
    edges = np.linspace(0, 1, bins + 1)
    rows = []
    for g, name in ((1, "treated"), (0, "control")):
        counts, _ = np.histogram(f[t == g], bins=edges)
        for i, c in enumerate(counts):
            rows.append({"group": name, "bin_low": edges[i], "bin_high": edges[i + 1], "n": int(c)})
    out = pd.DataFrame(rows)
    totals = out.groupby("group")["n"].transform("sum")
    out["share"] = out["n"] / totals
    return out


def caliper_summary(n_treated: int, n_control: int, n_pairs: int, caliper_width=None) -> dict:
    """How many treated patients the caliper left unmatched (1:1 matching).

    Returns
    -------
    dict
        n_treated, n_control, n_matched_treated, n_unmatched_treated,
        share_treated_unmatched, caliper_width.
    """
    if n_pairs > n_treated:
        raise ValueError(f"{n_pairs} pairs cannot come from {n_treated} treated patients")
    return {
        "n_treated": int(n_treated),
        "n_control": int(n_control),
        "n_matched_treated": int(n_pairs),
        "n_unmatched_treated": int(n_treated - n_pairs),
        "share_treated_unmatched": (n_treated - n_pairs) / n_treated if n_treated else np.nan,
        "caliper_width": caliper_width,
    }


def smd_proportion(p1, p0):
    """SMD of two proportions with the pooled SD (the study's convention, not x 100).

    ``(p1 - p0) / sqrt((p1 (1 - p1) + p0 (1 - p0)) / 2)``; 0 when both SDs are 0 and the
    proportions are equal.
    """
    p1 = np.asarray(p1, dtype=float)
    p0 = np.asarray(p0, dtype=float)
    sd = np.sqrt((p1 * (1 - p1) + p0 * (1 - p0)) / 2)
    diff = p1 - p0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(sd > 0, diff / np.where(sd > 0, sd, 1), np.where(diff == 0, 0.0, np.inf))
    return out


def generalizability_table(
    eligible: pd.DataFrame,
    matched: pd.DataFrame,
    covariates,
    levels: dict | None = None,
    treated: str = "treated",
) -> pd.DataFrame:
    """Characteristics of the matched cohort beside the full eligible cohort, with SMDs.

    Two comparisons: ``cohort = "all"`` (every matched patient vs every eligible patient)
    and ``cohort = "treated"`` (the matched treated vs all treated: the patients the
    matched hazard ratio describes vs those the study question is about).

    Parameters
    ----------
    eligible, matched : pandas.DataFrame
        The analysis dataset and the matched rows (categorical covariates as strings).
    covariates : list of str
        Categorical columns (the Table 1 variables).
    levels : dict, optional
        Level order per covariate (default :data:`pannet.cdm.TABLE1_LEVELS`, then any
        other values in sorted order).

    Returns
    -------
    pandas.DataFrame
        cohort, variable, level, n_eligible, pct_eligible, n_matched, pct_matched,
        smd (matched - eligible, pooled SD; not x 100).
    """
    from pannet.cdm import TABLE1_LEVELS

    levels = {**TABLE1_LEVELS, **(levels or {})}
    rows = []
    for cohort in ("all", "treated"):
        if cohort == "all":
            e, m = eligible, matched
        else:
            e = eligible[eligible[treated] == 1]
            m = matched[matched[treated] == 1]
        for var in covariates:
            for frame, name in ((e, "eligible"), (m, "matched")):
                if var not in frame.columns:
                    raise KeyError(f"generalizability_table: column {var!r} missing in {name}")
            seen = set(e[var].dropna().astype(str)) | set(m[var].dropna().astype(str))
            order = list(levels.get(var, ()))
            order += sorted(seen - set(order))
            ev = e[var].astype("string")
            mv = m[var].astype("string")
            for lv in order:
                ne = int((ev == lv).sum())
                nm = int((mv == lv).sum())
                pe = ne / len(e) if len(e) else np.nan
                pm = nm / len(m) if len(m) else np.nan
                rows.append(
                    {
                        "cohort": cohort,
                        "variable": var,
                        "level": lv,
                        "n_eligible": ne,
                        "pct_eligible": 100 * pe,
                        "n_matched": nm,
                        "pct_matched": 100 * pm,
                        "smd": float(smd_proportion(pm, pe)),
                    }
                )
    return pd.DataFrame(rows)


def plot_preference(hist: pd.DataFrame, path, bounds=(0.3, 0.7), note: str | None = None) -> None:
    """Preference-score distribution by group (share of each group per bin) as a PNG.

    Drawn from the histogram table, not from patients, so the shared copy can be drawn
    from the suppressed table (missing bins are left empty).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pannet.io import save_figure

    fig, ax = plt.subplots(figsize=(6, 3.6))
    colours = {"treated": "#D55E00", "control": "#0072B2"}
    labels = {"treated": "SG (resected)", "control": "non-SG"}
    for g in ("control", "treated"):
        h = hist[hist["group"] == g]
        ax.bar(
            h["bin_low"],
            h["share"].astype(float).fillna(0),
            width=h["bin_high"] - h["bin_low"],
            align="edge",
            alpha=0.5,
            color=colours[g],
            edgecolor=colours[g],
            label=labels[g],
        )
    for b in bounds:
        ax.axvline(b, color="black", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("Preference score")
    ax.set_ylabel("Share of group")
    ax.set_title(f"Preference score by group; equipoise region [{bounds[0]}, {bounds[1]}]")
    ax.legend(fontsize=8)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="#555555")
    fig.tight_layout()
    save_figure(fig, path, fmt="png", dpi=150)
    plt.close(fig)
