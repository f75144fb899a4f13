"""Kaplan-Meier figures (Figure 2 of the publication, and its PFS / sensitivity twins).

Drawn from the survival step tables and tests (Parquet), never from raw data: a panel
per population, curves per group with the pointwise CI band of the configured type,
censor marks, the log-rank p, and the numbers at risk under each panel. Okabe-Ito
colours plus distinct line styles, so the figure survives colour-blindness and greyscale.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

# Okabe & Ito (2008) colour-blind safe palette
COLOURS = {"SG": "#0072B2", "non-SG": "#D55E00"}
LINESTYLES = {"SG": "-", "non-SG": "--"}
LABELS = {"SG": "SG (primary resected)", "non-SG": "non-SG"}
# a panel title longer than TITLE_WRAP characters runs off its panel: wrapped at TITLE_WIDTH
TITLE_WRAP = 48
TITLE_WIDTH = 44
ENDPOINT_LABELS = {"os": "Overall survival", "pfs": "Progression-free survival"}
DOUBLE_COLUMN_IN = 7.0  # 178 mm, a journal's two-column width
SINGLE_COLUMN_IN = 3.5  # 89 mm


def n_at_risk(steps: pd.DataFrame, at: Sequence[float]) -> list[int]:
    """Number at risk at each time: ``n_risk`` of the first step at or after t (0 beyond)."""
    t = steps["time"].to_numpy(float)
    n = np.concatenate([steps["n_risk"].to_numpy(float), [0.0]])
    return [int(n[np.searchsorted(t, x, side="left")]) for x in at]


def _step_xy(steps: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Curve as a right-continuous step from (0, 1)."""
    x = np.concatenate([[0.0], steps["time"].to_numpy(float)])
    y = np.concatenate([[1.0], steps[col].to_numpy(float)])
    return x, y


def _format_p(p: float) -> str:
    if not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


def km_panel(ax, risk_ax, steps: pd.DataFrame, tests: pd.Series | None, title: str, xmax, ticks):
    """Draw one panel (curves, bands, censor marks, p) and its numbers-at-risk strip."""
    groups = [g for g in COLOURS if g in set(steps["group"])]
    for g in groups:
        s = steps[steps["group"] == g].sort_values("time")
        x, y = _step_xy(s, "surv")
        ax.step(x, y, where="post", color=COLOURS[g], ls=LINESTYLES[g], lw=1.2, label=LABELS[g])
        _, lo = _step_xy(s, "lower")
        _, up = _step_xy(s, "upper")
        ax.fill_between(x, lo, up, step="post", color=COLOURS[g], alpha=0.15, lw=0)
        cens = s[s["n_censor"] > 0]
        ax.plot(cens["time"], cens["surv"], ls="none", marker="|", ms=4, mew=0.8, color=COLOURS[g])
    ax.set_xlim(0, xmax)
    ax.set_ylim(0, 1.02)
    ax.set_xticks(ticks)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_yticklabels([f"{int(v * 100)}" for v in np.linspace(0, 1, 6)])
    ax.set_ylabel("Survival (%)")
    # a long population name ran into the next panel's title (and off the figure): wrap it;
    # km_figure leaves room for the second line
    if len(title) > TITLE_WRAP:
        title = textwrap.fill(title, TITLE_WIDTH)
    ax.set_title(title, loc="left", fontsize=8, fontweight="bold")
    ax.spines[["top", "right"]].set_visible(False)
    if tests is not None:
        ax.text(
            0.97,
            0.95,
            f"Log-rank p {_format_p(float(tests['logrank_p']))}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=7,
        )
    ax.legend(loc="lower left", frameon=False, fontsize=7, handlelength=2.5)
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("Years")
    # numbers at risk, one row per group, under the panel
    risk_ax.set_xlim(0, xmax)
    risk_ax.set_ylim(-0.5, len(groups) - 0.5)
    risk_ax.axis("off")
    top = len(groups) - 1
    risk_ax.text(-0.07 * xmax, top + 0.9, "Number at risk", fontsize=6.5, ha="left", va="center")
    for i, g in enumerate(groups):
        row = top - i
        counts = n_at_risk(steps[steps["group"] == g].sort_values("time"), ticks)
        # right-aligned left of the axis so the label never touches the t = 0 count
        risk_ax.text(
            -0.06 * xmax,
            row,
            g,
            ha="right",
            va="center",
            fontsize=6.5,
            color=COLOURS[g],
            clip_on=False,
        )
        for t, c in zip(ticks, counts, strict=True):
            risk_ax.text(t, row, str(c), ha="center", va="center", fontsize=6.5)


def km_figure(
    panels: Sequence[tuple[pd.DataFrame, pd.Series | None, str]],
    png: str | Path,
    pdf: str | Path,
    *,
    xmax: float | None = None,
    tick_step: float = 2.0,
    suptitle: str | None = None,
    footnote: str | None = None,
) -> None:
    """Kaplan-Meier panels side by side, saved as 300 dpi PNG and as PDF (atomically).

    Parameters
    ----------
    panels : list of (steps, tests row, title)
        ``steps`` as ``results/survival/*_steps.parquet`` (both groups), ``tests`` one
        row of ``*_tests.parquet`` (or None).
    xmax : float, optional
        Right end of the time axis, years; default the longest follow-up, rounded up to
        a tick.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pannet.io import save_figure

    if xmax is None:
        tmax = max(float(p[0]["time"].max()) for p in panels)
        xmax = tick_step * np.ceil(tmax / tick_step)
    ticks = np.arange(0, xmax + 1e-9, tick_step)
    width = DOUBLE_COLUMN_IN if len(panels) > 1 else SINGLE_COLUMN_IN
    wrapped = any(len(p[2]) > TITLE_WRAP for p in panels)
    with plt.rc_context({"font.size": 7, "font.family": "DejaVu Sans", "svg.hashsalt": "pannet"}):
        fig = plt.figure(figsize=(width, 3.3))
        gs = fig.add_gridspec(
            2,
            len(panels),
            height_ratios=[4.2, 1.0],
            hspace=0.55,
            wspace=0.3,
            left=0.1,
            right=0.98,
            top=(0.9 if suptitle else 0.93) - (0.05 if wrapped else 0.0),
            bottom=0.08,
        )
        for j, (steps, tests, title) in enumerate(panels):
            ax = fig.add_subplot(gs[0, j])
            risk_ax = fig.add_subplot(gs[1, j])
            km_panel(ax, risk_ax, steps, tests, title, xmax, ticks)
        if suptitle:
            fig.suptitle(suptitle, fontsize=8.5, fontweight="bold")
        if footnote:
            fig.text(0.01, 0.005, footnote, fontsize=5.5, color="0.35", ha="left", va="bottom")
        save_figure(fig, png, fmt="png")
        save_figure(fig, pdf, fmt="pdf", dpi="figure")
        plt.close(fig)
