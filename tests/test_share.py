"""The shareable bundle holds no row-level data and no count below min_cell_count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pannet.share import (
    FORBIDDEN_COLUMNS,
    SHARED_TABLES,
    SharedTable,
    make_share_bundle,
    share_tables,
    suppress_small_counts,
)

MIN_CELL = 5


def check_bundle(outdir: Path, min_cell: int, patient_keys=(), n_patients: int | None = None):
    """Assert the bundle is aggregate-only and free of small counts; return its tables."""
    files = sorted(p for p in outdir.iterdir() if not p.name.startswith("."))
    assert {p.suffix for p in files} <= {".csv", ".png", ".txt"}, files
    manifest = pd.read_csv(outdir / "MANIFEST.csv")
    listed = set(manifest["file"]) | {"MANIFEST.csv", "README.txt"}
    assert {p.name for p in files} == listed
    keys = set(map(str, patient_keys))
    tables = {}
    for row in manifest.itertuples():
        if not row.file.endswith(".csv"):
            continue
        df = pd.read_csv(outdir / row.file, keep_default_na=True)
        tables[row.file] = df
        # no patient-level column, no patient key anywhere, no per-patient table
        assert not FORBIDDEN_COLUMNS & set(df.columns), (row.file, df.columns)
        assert not keys & set(df.astype(str).to_numpy().ravel()), row.file
        if n_patients is not None:
            assert len(df) < n_patients / 2, row.file
        # every count is missing, zero or at least min_cell
        counts = str(row.count_columns).split() if isinstance(row.count_columns, str) else []
        for col in counts:
            v = df[col].dropna()
            assert ((v == 0) | (v >= min_cell)).all(), (row.file, col, v[(v > 0) & (v < min_cell)])
        # any other integer-valued column that looks like a count is checked too
        for col in df.columns:
            if col.startswith(("n_", "events")) or col in ("n", "nevent", "pairs"):
                v = pd.to_numeric(df[col], errors="coerce").dropna()
                assert ((v == 0) | (v >= min_cell)).all(), (row.file, col)
    return tables


def test_suppression_rules():
    df = pd.DataFrame(
        {
            "variable": ["a", "a", "a", "b", "b"],
            "n": [3, 10, 40, 0, 53],
            "pct": [5.7, 18.9, 75.5, 0.0, 100.0],
        }
    )
    spec = SharedTable(counts=("n",), dependent={"n": ("pct",)}, group_by=("variable",))
    out = suppress_small_counts(df, spec, MIN_CELL)
    # 3 is suppressed with its percentage; 10 too (complementary: else 53 - 10 - 40 = 3)
    assert out["n"].isna().tolist() == [True, True, False, False, False]
    assert out["pct"].isna().tolist() == [True, True, False, False, False]
    assert out["n"].iloc[3] == 0  # zero identifies nobody
    assert out["suppressed"].tolist() == [True, True, False, False, False]
    # a complement below min_cell is suppressed as well (total 20, 17 in bounds -> 3 out)
    eq = pd.DataFrame({"n": [20], "n_in_bounds": [17], "share_in_bounds": [0.85]})
    s = suppress_small_counts(eq, SHARED_TABLES["equipoise"], MIN_CELL)
    assert pd.isna(s["n_in_bounds"].iloc[0]) and pd.isna(s["share_in_bounds"].iloc[0])


def test_patient_level_tables_are_refused():
    with pytest.raises(ValueError, match="patient-level"):
        share_tables({"power": pd.DataFrame({"patient_key": ["x"], "events": [9]})})
    with pytest.raises(KeyError, match="no sharing rule"):
        share_tables({"analysis": pd.DataFrame({"n": [9]})})


def test_bundle_from_the_diagnostics_of_a_small_cohort(tmp_path):
    from test_diagnostics import CONFIG, COVARIATES, synthetic_cohort

    from pannet.balance import run_balance
    from pannet.diagnostics import run_all
    from pannet.io import write_parquet
    from pannet.matching import run_matching, run_propensity

    # small enough that many cells fall below 5
    analysis = synthetic_cohort(n=90, seed=5)
    _, scores = run_propensity(analysis, covariates=COVARIATES)
    pairs, matched = run_matching(analysis, scores)
    frames = run_all(
        analysis=analysis,
        scores=scores,
        pairs=pairs,
        matched=matched,
        balance=run_balance(analysis, scores, matched, covariates=COVARIATES),
        sensitivity=matched[matched["liver_directed_therapy"] == 0].reset_index(drop=True),
        config=CONFIG,
        covariates=COVARIATES,
    )
    paths = {}
    for name in SHARED_TABLES:
        if name in frames:
            paths[name] = write_parquet(frames[name], tmp_path / f"{name}.parquet", rule="test")
    out = tmp_path / "share"
    make_share_bundle(paths, out, min_cell=MIN_CELL, synthetic=True)
    tables = check_bundle(out, MIN_CELL, analysis["patient_key"], len(analysis))
    # the small cohort really had small counts, and they were suppressed
    raw_small = (frames["preference"]["n"].between(1, MIN_CELL - 1)).sum()
    assert raw_small > 0
    assert tables["preference.csv"]["n"].isna().sum() >= raw_small
    assert (out / "preference_score.png").stat().st_size > 5000
    assert "SYNTHETIC" in (out / "README.txt").read_text()
    assert "detail" not in tables["diagnostics.csv"].columns  # free text may quote counts
    # the patient-level PH residuals never reach the bundle
    assert not (out / "ph_residuals.csv").exists()


@pytest.mark.workflow
def test_demo_share_bundle(demo_run):
    from pannet.io import read_parquet

    analysis = read_parquet(demo_run / "cohort" / "analysis.parquet")
    check_bundle(demo_run / "share", MIN_CELL, analysis["patient_key"], len(analysis))
    d = read_parquet(demo_run / "diagnostics" / "diagnostics.parquet")
    assert len(d) and set(d["status"]) <= {"pass", "fail", "info"}
    assert np.isfinite(d.loc[d.check == "balance_max_abs_smd", "value"]).all()
