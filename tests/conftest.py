"""Shared fixtures: the project root, the demo run, and R / SLURM / Chromium availability.

The end-to-end tests share one Snakemake run of the demo workflow into ``results/``
(a no-op when ``make run`` already made it), so the suite pays for the pipeline once.
Tests that change inputs work on a copy (``workflow_copy``), never on the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
# The demo run's time stamps, pinned so that a clean run made elsewhere in the suite
# (tests/test_determinism.py) must match it byte for byte.
DEMO_EPOCH = "1700000000"


def _require(env: str, what: str) -> None:
    """Skip, or fail when CI says the tool must be there (PANNET_REQUIRE_*=1)."""
    msg = f"{what} is not available"
    if os.environ.get(env) == "1":
        pytest.fail(f"{msg}, but {env}=1 says CI installed it")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def rscript() -> str:
    exe = shutil.which("Rscript")
    if exe is None:
        _require("PANNET_REQUIRE_R", "Rscript")
    return exe


def run_r_survival(rscript: str, code: str, tmp_path: Path) -> dict:
    """Run R code (survival + jsonlite loaded) that leaves a list ``out``; return it parsed."""
    import json

    script = tmp_path / "ref.R"
    script.write_text(
        "suppressMessages({library(survival); library(jsonlite)})\n"
        f"{code}\n"
        f"writeLines(toJSON(out, digits = NA, matrix = 'rowmajor'), '{tmp_path / 'out.json'}')\n"
    )
    proc = subprocess.run([rscript, str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads((tmp_path / "out.json").read_text())


@pytest.fixture(scope="session")
def demo_run() -> Path:
    """Run the demo workflow into results/ (2 cores, time pinned); return the results folder."""
    proc = subprocess.run(
        [*SNAKEMAKE, "--cores", "2", "--profile", "workflow/profiles/default", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": DEMO_EPOCH},
    )
    if proc.returncode != 0:
        pytest.fail(f"demo workflow failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return ROOT / "results"


def copy_project(dest: Path, with_results: bool = True) -> Path:
    """Copy the project (without .venv and caches) into ``dest`` for tests that modify it."""
    ignore = shutil.ignore_patterns(
        ".venv",
        ".git",
        ".snakemake",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        *(() if with_results else ("results",)),
    )
    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    return dest


WORKFLOW_PARTS = (
    "Snakefile",
    "config",
    "workflow",
    "src",
    "resources",
    "pyproject.toml",
    "requirements.in",
    "requirements.lock",
)


def copy_workflow(dest: Path) -> Path:
    """Copy only what a run needs (workflow, code, config, demo data) into ``dest``."""
    dest.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


@pytest.fixture
def workflow_copy(tmp_path, demo_run) -> Path:
    """A copy of the project with a completed demo run, safe to modify."""
    return copy_project(tmp_path / "project")
