"""A tiny project made through the real artefact contract, for the provenance tests.

Two sites' raw CSV exports -> harmonised patients (site, source_row kept) -> analysis
cohort -> matched cohort -> a Table-1-like count table and a rendered figure, plus
environment.json and the manifest: the same shapes as the workflow, in milliseconds.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pannet.audit import build_manifest
from pannet.io import write_atomic, write_parquet, write_sidecar
from pannet.provenance import environment_record
from pannet.table1 import build_table1

ROOT = Path(__file__).resolve().parents[1]
SITES = {
    # id, age, resected; row order = raw data row order
    "north": [(101, 45, 1), (102, 63, 0), (103, 48, 0), (104, 71, 1), (105, 42, 1)],
    "south": [(201, 39, 1), (202, 55, 0), (203, 47, 0), (204, 66, 1)],
}
TARGETS = [
    "results/tables/table1.parquet",
    "results/figures/km.png",
    "results/provenance/environment.json",
]


def age_group(a: float) -> str:
    return "<50" if a < 50 else "50-59" if a < 60 else "60-69" if a < 70 else ">70"


def make_project(root: Path) -> Path:
    """Write the raw files, a Snakefile naming the rules, and a copy of src/pannet."""
    shutil.copytree(
        ROOT / "src" / "pannet",
        root / "src" / "pannet",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    (root / "Snakefile").write_text(
        "\n".join(
            f"rule {r}:\n    output: 'x'\n"
            for r in ("harmonise", "derive_analysis", "match", "table1", "figure")
        )
    )
    for site, rows in SITES.items():
        d = root / "resources" / "demo" / site
        d.mkdir(parents=True)
        lines = ["id,age,resected"] + [f"{i},{a},{r}" for i, a, r in rows]
        (d / "patients.csv").write_text("\n".join(lines) + "\n")
        (d / "dictionary.yaml").write_text(f"site: {site}\n")
    return root


def run_pipeline(root: Path) -> None:
    """Make every artefact; the working directory must be ``root``."""
    harmonised = []
    for i, site in enumerate(SITES):
        raw = f"resources/demo/{site}/patients.csv"
        df = pd.read_csv(root / raw)
        out = pd.DataFrame(
            {
                "patient_key": [f"k{site[0]}{x}" for x in df["id"]],
                "site": site,
                "source_row": range(1, len(df) + 1),
                "age_years": df["age"].astype(float),
                "resected": df["resected"],
            }
        )
        path = f"results/harmonised/{site}/patients.parquet"
        # One site names the raw file its source_row indexes, the other relies on the
        # table name matching the raw file name: both conventions are traced.
        extra = {"row_lineage": {"source_row": raw}} if i == 0 else None
        write_parquet(
            out,
            path,
            rule="harmonise",
            inputs=[raw, f"resources/demo/{site}/dictionary.yaml"],
            params={"site": site},
            extra=extra,
        )
        harmonised.append(path)
    pats = pd.concat([pd.read_parquet(root / p) for p in harmonised], ignore_index=True)
    analysis = pd.DataFrame(
        {
            "patient_key": pats["patient_key"],
            "site": pats["site"],
            "group": ["SG" if r else "non-SG" for r in pats["resected"]],
            "treated": pats["resected"].astype("int64"),
            "age_group": [age_group(a) for a in pats["age_years"]],
        }
    )
    write_parquet(
        analysis, "results/cohort/analysis.parquet", rule="derive_analysis", inputs=harmonised
    )
    matched = analysis[analysis["patient_key"].isin(["kn101", "kn102", "ks201", "ks202"])]
    write_parquet(
        matched.reset_index(drop=True),
        "results/matching/matched.parquet",
        rule="match",
        inputs=["results/cohort/analysis.parquet"],
        params={"caliper": 0.2},
        seed=7,
    )
    # The real Table 1 builder, so trace is tested against the published layout.
    table1 = build_table1(analysis, matched.reset_index(drop=True), variables=["age_group"])
    write_parquet(
        table1,
        "results/tables/table1.parquet",
        rule="table1",
        inputs=["results/cohort/analysis.parquet", "results/matching/matched.parquet"],
    )
    write_atomic("results/figures/km.png", lambda tmp: tmp.write_bytes(b"\x89PNG fake figure"))
    write_sidecar(
        "results/figures/km.png", rule="figure", inputs=["results/matching/matched.parquet"]
    )
    write_atomic(
        "results/provenance/environment.json",
        lambda tmp: tmp.write_text(json.dumps(environment_record(), sort_keys=True)),
    )
    build_manifest(TARGETS)


@pytest.fixture(scope="session")
def mini_template(tmp_path_factory) -> Path:
    """The miniature project, run once per session (tests work on copies of it)."""
    root = make_project(tmp_path_factory.mktemp("mini") / "proj")
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run_pipeline(root)
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def mini(mini_template, tmp_path, monkeypatch) -> Path:
    """A private copy of the miniature project; the working directory is its root."""
    root = shutil.copytree(mini_template, tmp_path / "proj", symlinks=True)
    monkeypatch.chdir(root)
    return root
