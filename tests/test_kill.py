"""A Snakemake job SIGKILLed in the middle of writing an artefact leaves nothing a later step
would read; the rerun completes and gives the same tables as an uninterrupted run.

The test runs the real workflow in a private copy of the project. To kill the job at a
known moment - with an artefact half written - every Python process of the run gets a
``sitecustomize`` (on ``PYTHONPATH``, this test only) that wraps
``pyarrow.parquet.write_table``: when the file being written is the temporary file of
``results/cohort/treatments.parquet`` (``merge_cohort`` writes ``cohort.parquet`` first,
then ``treatments.parquet``), it writes it, cuts it to half its length, signals the
test and sleeps. The test then SIGKILLs the whole process group (Snakemake and its job),
as the kernel's OOM killer or a cluster's time limit would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import copy_workflow

SHIM = """
import os
_marker = os.environ.get("PANNET_KILLTEST_MARKER")
if _marker:
    import time
    import pyarrow.parquet as _pq

    _real = _pq.write_table

    def write_table(table, where, *args, **kwargs):
        _real(table, where, *args, **kwargs)
        name = os.path.basename(str(where))
        if name.startswith(".treatments.parquet.") and "cohort" in str(where):
            with open(where, "r+b") as fh:
                fh.truncate(os.path.getsize(where) // 2)
            open(_marker, "w").close()
            time.sleep(600)

    _pq.write_table = write_table
"""

COHORT = ("cohort", "treatments", "attrition", "ledger", "analysis")
TARGET = "results/cohort/analysis.parquet"


def _snakemake(proj: Path, *args: str, env: dict | None = None, **kw):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *args],
        cwd=proj,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(proj / "src"), **(env or {})},
        timeout=900,
        **kw,
    )


def _tables(proj: Path) -> dict[str, pd.DataFrame]:
    from pannet.io import read_parquet

    return {n: read_parquet(proj / "results" / "cohort" / f"{n}.parquet") for n in COHORT}


@pytest.mark.workflow
def test_sigkill_mid_write_leaves_no_partial_artefact_and_rerun_is_identical(tmp_path):
    proj = copy_workflow(tmp_path / "project")
    # the site stages first (not interrupted), so the kill hits merge_cohort
    first = _snakemake(proj, *[f"results/quarantine/{s}.parquet" for s in _sites(proj)])
    assert first.returncode == 0, first.stderr[-4000:]

    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
    marker = tmp_path / "writing"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(shim), str(proj / "src")]),
        "PANNET_KILLTEST_MARKER": str(marker),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "snakemake", "--cores", "1", TARGET],
        cwd=proj,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
            pytest.fail(
                f"merge_cohort never reached the write of treatments.parquet:\n{out[-4000:]}"
            )
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)

    cohort_dir = proj / "results" / "cohort"
    # the artefact being written is not there under its name: only a hidden .tmp file,
    # which no rule declares as an input
    assert not (cohort_dir / "treatments.parquet").exists()
    leftovers = [p.name for p in cohort_dir.iterdir() if p.name.startswith(".")]
    assert any(n.startswith(".treatments.parquet.") and n.endswith(".tmp") for n in leftovers)
    # what did get written by the killed job (cohort.parquet) is complete, and Snakemake
    # knows the job did not finish: the next run redoes merge_cohort before anything reads it
    from pannet.io import read_parquet

    for p in cohort_dir.iterdir():
        if not p.name.startswith(".") and p.suffix == ".parquet":
            read_parquet(p)
    # without being told, Snakemake refuses to go on from a killed job's outputs...
    plain = _snakemake(proj, "-n", TARGET)
    assert plain.returncode != 0
    assert "IncompleteFilesException" in plain.stdout + plain.stderr
    assert "results/cohort/cohort.parquet" in plain.stdout + plain.stderr
    # ...and the project's profile (make run) redoes merge_cohort before anything reads it
    profile = ("--profile", "workflow/profiles/default")
    dry = _snakemake(proj, *profile, "-n", TARGET)
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    assert "merge_cohort" in dry.stdout and "derive_analysis" in dry.stdout, dry.stdout[-3000:]

    # the killed Snakemake could not release its lock: the documented recovery
    # (docs/reliability.md) is `snakemake --unlock`, then the run again
    locked = _snakemake(proj, *profile, TARGET)
    assert locked.returncode != 0 and "LockException" in locked.stdout + locked.stderr
    unlock = _snakemake(proj, "--unlock")
    assert unlock.returncode == 0, unlock.stderr[-3000:]
    rerun = _snakemake(proj, *profile, TARGET)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    resumed = _tables(proj)

    again = _snakemake(proj, "--forcerun", "merge_cohort", TARGET)
    assert again.returncode == 0, again.stderr[-3000:]
    uninterrupted = _tables(proj)
    for name in COHORT:
        pd.testing.assert_frame_equal(resumed[name], uninterrupted[name], obj=name)
    assert len(resumed["ledger"]) > 0 and len(resumed["analysis"]) > 0


def _sites(proj: Path) -> list[str]:
    import yaml

    cfg = yaml.safe_load((proj / "config" / "config.yaml").read_text(encoding="utf-8"))
    return sorted(cfg["sites"])
