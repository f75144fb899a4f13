"""Determinism: clean runs give the same artefacts, whatever the core count.

A fresh 1-core run of the demo workflow in a private copy and the suite's demo run
(``demo_run``: 2 cores), both with ``SOURCE_DATE_EPOCH`` pinning every time stamp, must
produce byte-identical results (every Parquet, every rendered file, every sidecar, the
environment record, the manifest). Jobs rerun without a pinned time must agree with them
in every Parquet's table data and in their provenance apart from the time stamps.

The demo run is reused as the 2-core run so the suite pays for one extra run, not two;
when ``results/`` was not made by a pinned run (``make run`` before ``pytest``, or
another fixture's unpinned partial run), a clean 2-core run is made instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import DEMO_EPOCH, copy_project

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

EPOCH = DEMO_EPOCH
PINNED_TIME = datetime.fromtimestamp(int(EPOCH), UTC).isoformat()
PROFILE = ("--profile", "workflow/profiles/default")

# Jobs the unpinned check reruns: one of each kind of writer (study tables, rendered
# HTML/MD/TeX/DOCX, a figure's PNG/PDF, the report HTML that prints its own time stamp,
# the environment record, the manifest). Each has no dependants beyond these, so the
# forced jobs are all that runs (a forced site job would rerun the whole study).
UNPINNED_TARGETS = (
    "results/provenance/environment.json",
    "results/tables/table1.parquet",
    "results/report/publication_audit.parquet",
    "results/report/tables/table1.html",
    "results/figures/figure2_os.png",
    "results/report/study_report.html",
    "results/provenance/manifest.parquet",
)


def snakemake(project: Path, *args: str, pinned: bool = True) -> None:
    env = {**os.environ, "PYTHONPATH": str(project / "src")}
    env.pop("SOURCE_DATE_EPOCH", None)
    if pinned:
        env["SOURCE_DATE_EPOCH"] = EPOCH
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--quiet", *args],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]


def clean_project(root: Path, dest: Path) -> Path:
    project = copy_project(dest, with_results=False)
    if (root / ".git").is_dir():
        # The provenance records the commit and dirty flag: the copy must have them too.
        shutil.copytree(root / ".git", project / ".git", symlinks=True)
    return project


def files(results: Path) -> dict[str, str]:
    return {
        p.relative_to(results).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(results.rglob("*"))
        if p.is_file()
    }


def without_time(obj):
    """A provenance record without its time stamps.

    An input under results/ is itself an artefact whose bytes hold its own time stamp, so
    its SHA-256 differs between a pinned and an unpinned run for that reason alone; it is
    left out here (the pinned runs compare those hashes byte for byte).
    """
    if isinstance(obj, dict):
        if str(obj.get("path", "")).startswith("results/") and "sha256" in obj:
            return {k: v for k, v in obj.items() if k != "sha256"}
        return {k: without_time(v) for k, v in obj.items() if k != "time"}
    if isinstance(obj, list):
        return [without_time(v) for v in obj]
    return obj


def parquet_parts(path: Path):
    import pyarrow.parquet as pq

    from pannet.io import PROVENANCE_KEY

    table = pq.read_table(path)
    meta = dict(table.schema.metadata or {})
    prov = json.loads(meta.pop(PROVENANCE_KEY, b"{}"))
    return table.replace_schema_metadata(meta), prov


def manifest_without_time(table) -> list[dict]:
    """The manifest's rows without what an artefact's own time stamp changes.

    Each artefact under results/ holds its time stamp in its bytes, so its SHA-256 and
    size (and the hashes of results/ inputs in its recorded inputs) differ between a
    pinned and an unpinned run; every other cell, raw inputs' hashes included, must not.
    """
    rows = []
    for row in table.to_pylist():
        if str(row["path"]).startswith("results/"):
            row = {k: v for k, v in row.items() if k not in ("sha256", "bytes")}
        if isinstance(row.get("inputs"), str):
            row["inputs"] = without_time(json.loads(row["inputs"]))
        rows.append(row)
    return rows


def explain(a: Path, b: Path, rel: str) -> str:
    """Why one file differs between two runs (for the failure message)."""
    if rel.endswith(".parquet"):
        ta, pa = parquet_parts(a / rel)
        tb, pb = parquet_parts(b / rel)
        if not ta.equals(tb):
            return f"{rel}: table data differ"
        if pa != pb:
            keys = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
            return f"{rel}: provenance differs in {keys}"
        return f"{rel}: same data and provenance, different encoding"
    if rel.endswith(".json"):
        ja, jb = json.loads((a / rel).read_text()), json.loads((b / rel).read_text())
        keys = sorted(k for k in set(ja) | set(jb) if ja.get(k) != jb.get(k))
        return f"{rel}: differs in {keys}"
    return f"{rel}: bytes differ"


def recorded_stamps(results: Path) -> set[tuple]:
    """Every (time, git commit, dirty flag) the artefacts of ``results`` record."""
    records = [parquet_parts(p)[1] for p in results.rglob("*.parquet")]
    for p in [*results.rglob("*.prov.json"), results / "provenance/environment.json"]:
        records.append(json.loads(p.read_text()) if p.exists() else {})
    return {
        (r.get("time"), r.get("code", {}).get("commit"), r.get("code", {}).get("dirty"))
        for r in records
    }


@pytest.fixture(scope="module")
def one_core(root, tmp_path_factory) -> Path:
    """A clean run on 1 core, time pinned; returns its project folder."""
    project = clean_project(root, tmp_path_factory.mktemp("det1") / "project")
    snakemake(project, *PROFILE, "--cores", "1")
    return project


@pytest.fixture(scope="module")
def two_core(root, demo_run, one_core, tmp_path_factory) -> Path:
    """A clean run on 2 cores, time pinned: the demo run when it is one; returns results/.

    The demo run counts as one when every artefact it holds was made with the pinned
    time at the code version of the 1-core run (a results/ folder kept from an earlier
    commit, or made partly unpinned, would differ for that reason alone).
    """
    one = one_core / "results"
    stamps = recorded_stamps(one)
    assert len(stamps) == 1 and next(iter(stamps))[0] == PINNED_TIME, stamps
    if recorded_stamps(demo_run) == stamps and files(demo_run).keys() == files(one).keys():
        return demo_run
    project = clean_project(root, tmp_path_factory.mktemp("det2") / "project")
    snakemake(project, *PROFILE, "--cores", "2")
    return project / "results"


def test_one_and_two_core_runs_are_byte_identical(one_core, two_core):
    one = one_core / "results"
    fa, fb = files(one), files(two_core)
    assert sorted(fa) == sorted(fb), set(fa) ^ set(fb)
    diffs = [explain(one, two_core, rel) for rel in fa if fa[rel] != fb[rel]]
    assert not diffs, "\n".join(diffs)


def test_unpinned_rerun_agrees_apart_from_time_stamps(one_core, tmp_path):
    project = tmp_path / "project"
    ignore = shutil.ignore_patterns(".snakemake", "__pycache__", ".pytest_cache")
    shutil.copytree(one_core, project, ignore=ignore, symlinks=True)
    pinned = one_core / "results"
    snakemake(project, "--cores", "1", "--force", *UNPINNED_TARGETS, pinned=False)
    results = project / "results"

    assert files(results).keys() == files(pinned).keys()
    # copytree kept every file's mtime: the files with a new one are the rerun's.
    rerun = [
        rel
        for rel in files(results)
        if (results / rel).stat().st_mtime_ns != (pinned / rel).stat().st_mtime_ns
    ]
    assert {t.removeprefix("results/") for t in UNPINNED_TARGETS} <= set(rerun), rerun
    # Only the forced jobs ran, not the study below them (that would be a clean run).
    assert {rel.split("/")[0] for rel in rerun} <= {"provenance", "tables", "report", "figures"}
    problems = []
    for rel in rerun:
        a, b = pinned / rel, results / rel
        if rel.endswith(".parquet"):
            ta, pa = parquet_parts(a)
            tb, pb = parquet_parts(b)
            if rel == "provenance/manifest.parquet":
                same = manifest_without_time(ta) == manifest_without_time(tb)
            else:
                same = ta.equals(tb)
            if not same:
                problems.append(f"{rel}: table data differ")
        elif rel.endswith(".json"):
            pa, pb = json.loads(a.read_text()), json.loads(b.read_text())
        else:
            continue
        # The rerun recorded the clock's time, so the comparison below is not vacuous.
        assert pb.get("time") not in (None, PINNED_TIME), f"{rel}: {pb.get('time')}"
        pa, pb = without_time(pa), without_time(pb)
        if pa != pb:
            keys = sorted(k for k in set(pa) | set(pb) if pa.get(k) != pb.get(k))
            problems.append(f"{rel}: provenance differs in {keys}")
    assert not problems, "\n".join(problems)
