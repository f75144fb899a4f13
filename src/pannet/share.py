"""The shareable bundle: aggregate tables and figures safe to send outside a site.

``results/share/`` holds only aggregate results (no patient key, no patient-level row), and
every count below ``diagnostics.min_cell_count`` (5 by default) is suppressed, with every
value that would let a reader recompute it:

- a count c with 0 < c < min is replaced by NA (zero is kept: it identifies nobody);
- a count whose complement within its total (total - c) is small is suppressed too, since
  the total is published;
- proportions, percentages and statistics computed from a suppressed count are blanked;
- complementary suppression: when exactly one cell of a group (one variable's levels, one
  group's histogram bins) is suppressed, the next smallest non-zero cell is suppressed as
  well, so the suppressed value cannot be recovered by subtraction from the total.

Each shared table is written as CSV (readable anywhere) and listed in ``MANIFEST.csv``
with its count columns and the number of suppressed cells.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "SharedTable",
    "SHARED_TABLES",
    "suppress_small_counts",
    "share_tables",
    "write_share_bundle",
    "FORBIDDEN_COLUMNS",
    "make_share_bundle",
]

# Columns that identify a patient or carry patient-level values; never in the bundle.
FORBIDDEN_COLUMNS = frozenset(
    {
        "patient_key",
        "treated_key",
        "control_key",
        "source_row",
        "pair_id",
        "time_zero",
        "age_years",
        "os_years",
        "pfs_years",
        "naive_os_years",
        "ps",
        "logit",
        "resid",
    }
)


@dataclass(frozen=True)
class SharedTable:
    """How one table is made shareable.

    Attributes
    ----------
    counts : tuple of str
        Count columns (suppressed when small).
    totals : dict of count column -> total column
        A count whose complement (total - count) is small is suppressed too.
    dependent : dict of count column -> tuple of columns
        Columns blanked on the rows where that count is suppressed.
    group_by : tuple of str
        Groups for complementary suppression.
    drop : tuple of str
        Columns left out of the shared copy (e.g. free text quoting counts).
    """

    counts: tuple[str, ...]
    totals: dict = field(default_factory=dict)
    dependent: dict = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    drop: tuple[str, ...] = ()


SHARED_TABLES: dict[str, SharedTable] = {
    "diagnostics": SharedTable(counts=(), drop=("detail",)),
    "power": SharedTable(
        counts=("n_treated", "n_control", "events"),
        dependent={"events": ("mdrr", "mdrr_protective")},
    ),
    "equipoise": SharedTable(
        counts=("n", "n_in_bounds", "n_unmatched_treated", "n_matched_treated"),
        totals={"n_in_bounds": "n", "n_unmatched_treated": "n_treated"},
        dependent={
            "n_in_bounds": ("share_in_bounds",),
            "n_unmatched_treated": ("share_treated_unmatched",),
            "n": ("pref_q1", "pref_median", "pref_q3"),
        },
        drop=("n_treated", "n_control"),
    ),
    "preference": SharedTable(counts=("n",), dependent={"n": ("share",)}, group_by=("group",)),
    "generalizability": SharedTable(
        counts=("n_eligible", "n_matched"),
        dependent={"n_eligible": ("pct_eligible", "smd"), "n_matched": ("pct_matched", "smd")},
        group_by=("cohort", "variable"),
    ),
    "ph_tests": SharedTable(counts=("n", "events"), dependent={"events": ("chisq", "p")}),
    "stratified_cox": SharedTable(
        counts=("n", "nevent", "pairs", "informative_pairs"),
        dependent={"informative_pairs": ("hr", "hr_lower", "hr_upper", "p", "coef", "se")},
    ),
    "survival_tests": SharedTable(
        counts=("n", "events", "cox_n_clusters"),
        dependent={"events": ("hr", "hr_lower", "hr_upper", "cox_p", "logrank_p")},
    ),
}


def _small(x: pd.Series, min_cell: int) -> pd.Series:
    v = pd.to_numeric(x, errors="coerce").astype("float64")  # NA -> NaN: not small
    return pd.Series((v > 0) & (v < min_cell), index=x.index, dtype=bool)


def suppress_small_counts(df: pd.DataFrame, spec: SharedTable, min_cell: int = 5) -> pd.DataFrame:
    """Return a copy of ``df`` with small counts (and what reveals them) suppressed.

    Counts become nullable integers (NA where suppressed); a boolean column ``suppressed``
    marks the rows where anything was blanked.
    """
    out = df.drop(columns=[c for c in spec.drop if c in df.columns]).copy()
    suppressed_any = pd.Series(False, index=out.index)
    for col in spec.counts:
        if col not in out.columns:
            continue
        mask = _small(out[col], min_cell)
        total = spec.totals.get(col)
        if total is not None and total in df.columns:
            mask |= _small(pd.to_numeric(df[total]) - pd.to_numeric(df[col]), min_cell)
        if spec.group_by and mask.any():
            # complementary suppression inside each group
            for _, idx in out.groupby(list(spec.group_by), sort=False).groups.items():
                m = mask.loc[idx]
                if m.sum() == 1:
                    vals = pd.to_numeric(out.loc[idx, col]).where(~m & (out.loc[idx, col] > 0))
                    if vals.notna().any():
                        mask.loc[vals.idxmin()] = True
        out[col] = pd.array(
            np.where(mask, pd.NA, pd.to_numeric(out[col], errors="coerce")), dtype="Int64"
        )
        for dep in spec.dependent.get(col, ()):
            if dep in out.columns:
                out[dep] = out[dep].astype("float64").where(~mask)
        suppressed_any |= mask
    # a total column that is itself small is a count too
    for total in spec.totals.values():
        if total in out.columns and total not in spec.counts:
            mask = _small(out[total], min_cell)
            out[total] = pd.array(
                np.where(mask, pd.NA, pd.to_numeric(out[total], errors="coerce")), dtype="Int64"
            )
            suppressed_any |= mask
    out["suppressed"] = suppressed_any.to_numpy()
    return out


def share_tables(frames: dict[str, pd.DataFrame], min_cell: int = 5) -> dict[str, pd.DataFrame]:
    """Shareable copies of the aggregate tables (names as in :data:`SHARED_TABLES`).

    The diagnostics table's ``value`` of the caliper check (a share of the treated) is
    blanked when the unmatched count it stands for is small, and ``concerns`` lists are
    joined with "; " for CSV.
    """
    out = {}
    for name, df in frames.items():
        if name not in SHARED_TABLES:
            raise KeyError(f"no sharing rule for table {name!r}; known: {sorted(SHARED_TABLES)}")
        bad = sorted(FORBIDDEN_COLUMNS & set(df.columns))
        if bad:
            raise ValueError(f"table {name!r} has patient-level column(s) {bad}: not shareable")
        s = suppress_small_counts(df, SHARED_TABLES[name], min_cell)
        if "concerns" in s.columns:
            s["concerns"] = s["concerns"].map(lambda c: "; ".join(map(str, c)))
        out[name] = s
    if "diagnostics" in out and "equipoise" in frames:
        eq = frames["equipoise"].set_index("group")
        d = out["diagnostics"]
        n_un = eq.loc["all", "n_unmatched_treated"]
        n_tr = eq.loc["all", "n_treated"]
        n_in = eq.loc["all", "n_in_bounds"]
        n_all = eq.loc["all", "n"]
        for check, k, total in (
            ("caliper_unmatched_treated", n_un, n_tr),
            ("equipoise", n_in, n_all),
        ):
            if 0 < k < min_cell or 0 < total - k < min_cell:
                rows = d["check"] == check
                d.loc[rows, "value"] = np.nan
                d.loc[rows, "suppressed"] = True
    return out


def write_share_bundle(
    frames: dict[str, pd.DataFrame],
    outdir: str | os.PathLike,
    min_cell: int = 5,
    figures: dict[str, str | os.PathLike] | None = None,
    synthetic: bool = False,
) -> list[Path]:
    """Write the shareable tables as CSV, a MANIFEST.csv and a README.txt into ``outdir``.

    ``figures`` (name -> existing PNG made from shareable aggregates) are copied in.
    Returns the written paths.
    """
    import shutil

    from pannet.io import atomic_path

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    tables = share_tables(frames, min_cell)
    written, manifest = [], []
    for name, df in tables.items():
        path = outdir / f"{name}.csv"
        with atomic_path(path) as tmp:
            df.to_csv(tmp, index=False, lineterminator="\n")
        written.append(path)
        spec = SHARED_TABLES[name]
        manifest.append(
            {
                "file": path.name,
                "rows": len(df),
                "count_columns": " ".join(c for c in spec.counts if c in df.columns),
                "suppressed_rows": int(df["suppressed"].sum()),
            }
        )
    for name, src in (figures or {}).items():
        path = outdir / f"{name}.png"
        with atomic_path(path) as tmp:
            shutil.copyfile(src, tmp)
        written.append(path)
        manifest.append({"file": path.name, "rows": 0, "count_columns": "", "suppressed_rows": 0})
    mpath = outdir / "MANIFEST.csv"
    with atomic_path(mpath) as tmp:
        pd.DataFrame(manifest).to_csv(tmp, index=False, lineterminator="\n")
    readme = outdir / "README.txt"
    with atomic_path(readme) as tmp:
        tmp.write_text(
            ("SYNTHETIC DEMO DATA - not the study's patients.\n\n" if synthetic else "")
            + "pannet shareable bundle: aggregate tables and figures only (no patient-level "
            "rows, no patient keys).\n"
            f"Every count between 1 and {min_cell - 1} is suppressed (empty cell), with the "
            "percentages and statistics computed from it, counts whose complement within a "
            "published total is that small, and one more cell of the same group when exactly "
            "one was suppressed (complementary suppression). Column 'suppressed' marks such "
            "rows. MANIFEST.csv lists each file and its count columns.\n"
        )
    return [*written, mpath, readme]


def make_share_bundle(
    tables: dict[str, str | os.PathLike | list],
    outdir: str | os.PathLike,
    min_cell: int = 5,
    bounds=(0.3, 0.7),
    synthetic: bool = False,
) -> list[Path]:
    """Read the aggregate Parquet tables and write the share bundle (workflow entry point).

    ``tables`` maps a :data:`SHARED_TABLES` name to a Parquet path (or a list of paths,
    concatenated, e.g. every survival tests table). The preference-score figure is drawn
    from the suppressed histogram, so the figure shows nothing the tables hide.
    """
    from pannet.equipoise import plot_preference
    from pannet.io import read_parquet

    frames = {}
    for name, paths in tables.items():
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if paths:
            frames[name] = pd.concat([read_parquet(p) for p in paths], ignore_index=True)
    figures = {}
    if "preference" in frames:
        hist = share_tables({"preference": frames["preference"]}, min_cell)["preference"]
        fig = Path(outdir) / ".preference_score.src.png"
        Path(outdir).mkdir(parents=True, exist_ok=True)
        plot_preference(
            hist, fig, bounds=bounds, note=f"bins with 1-{min_cell - 1} patients not shown"
        )
        figures["preference_score"] = fig
    try:
        return write_share_bundle(frames, outdir, min_cell, figures=figures, synthetic=synthetic)
    finally:
        for f in figures.values():
            Path(f).unlink(missing_ok=True)
