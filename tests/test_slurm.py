"""The bootstrap stage on a real SLURM cluster equals a local run, byte for byte.

Needs a running cluster (``sinfo`` answers): CI starts a one-node cluster with
``.ci/slurm-up`` and sets PANNET_REQUIRE_SLURM=1, which turns a missing cluster into a
failure instead of a skip. The stage runs on a copy of the project with the demo run's
matched table, through ``--executor slurm`` with ``workflow/profiles/slurm``, job status
from ``squeue`` (the CI cluster has no accounting database; its MinJobAge keeps finished
jobs visible). Provenance time stamps are pinned with SOURCE_DATE_EPOCH, so whole files
compare equal. Every command is bounded by ``timeout``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import _require, copy_project

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

BOOT_CONFIG = "bootstrap:\n  replicates: 20\n  batch_size: 5\n  scheme: pairs\n"
STAGE = [
    "--allowed-rules",
    "bootstrap_batch",
    "bootstrap_summary",
    "--configfile",
    "boot-test.yaml",
    "--",
    "results/bootstrap/summary.parquet",
]
TIMEOUT = ["timeout", "-k", "10"]


def _cluster_cpus() -> int | None:
    """CPUs of an idle node, or None when no SLURM controller answers."""
    if shutil.which("sinfo") is None:
        return None
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T %c"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return None
    nodes = [ln.split() for ln in out.stdout.splitlines() if ln.strip()]
    usable = [int(c) for s, c in nodes if s.rstrip("*") in ("idle", "mixed")]
    return max(usable) if out.returncode == 0 and usable else None


def _project(dest: Path, demo: Path) -> Path:
    proj = copy_project(dest, with_results=False)
    (proj / "results/matching").mkdir(parents=True)
    shutil.copy2(demo / "matching/matched.parquet", proj / "results/matching/matched.parquet")
    (proj / "boot-test.yaml").write_text(BOOT_CONFIG)
    return proj


def _start(cmd: list[str], cwd: Path, seconds: int) -> subprocess.Popen:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "1700000000"}
    return subprocess.Popen(
        [*TIMEOUT, str(seconds), *cmd],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(popen: subprocess.Popen, cmd: list[str]) -> subprocess.CompletedProcess:
    out, err = popen.communicate()
    proc = subprocess.CompletedProcess(popen.args, popen.returncode, out, err)
    if proc.returncode != 0:
        pytest.fail(
            f"{' '.join(cmd[:6])} ... exited {proc.returncode}"
            f"{' (timeout)' if proc.returncode in (124, 137) else ''}:\n"
            f"{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def test_bootstrap_stage_on_slurm_equals_local(tmp_path, request, capsys):
    cpus = _cluster_cpus()
    if cpus is None:
        _require("PANNET_REQUIRE_SLURM", "a SLURM cluster (sinfo)")
    demo = request.getfixturevalue("demo_run")
    smk = [sys.executable, "-m", "snakemake"]

    # the local reference run works while the cluster run waits on SLURM
    local = _project(tmp_path / "local", demo)
    local_cmd = [*smk, "--cores", "1", *STAGE]
    local_run = _start(local_cmd, local, 300)

    cluster = _project(tmp_path / "slurm", demo)
    slurm_cmd = [
        *smk,
        "--profile",
        "workflow/profiles/slurm",
        "--cores",
        str(min(cpus, 4)),
        "--slurm-no-account",
        "--slurm-status-command",
        "squeue",
        "--slurm-init-seconds-before-status-checks",
        "5",
        *STAGE,
    ]
    try:
        proc = _finish(_start(slurm_cmd, cluster, 300), slurm_cmd)
        _finish(local_run, local_cmd)
    finally:
        if local_run.poll() is None:  # `timeout` passes SIGTERM on to snakemake
            local_run.terminate()
            local_run.wait(timeout=30)
    log = proc.stdout + proc.stderr
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: ([^)]*)\)", log)
    ids = [j for j, _ in submitted]
    with capsys.disabled():
        print(f"\nSLURM job ids of the bootstrap stage: {', '.join(ids)}")
    # 4 batches grouped into one submission, plus the summary
    assert len(ids) == 2, log[-3000:]
    assert any("group_bootstrap" in path for _, path in submitted), submitted
    states = subprocess.run(
        ["squeue", "--states=all", "-h", "-o", "%i %T", "-j", ",".join(ids)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    seen = dict(ln.split() for ln in states.stdout.splitlines() if ln.strip())
    assert seen == {j: "COMPLETED" for j in ids}, (seen, states.stderr)

    files = sorted(p.name for p in (local / "results/bootstrap").glob("*.parquet"))
    assert files == [
        "batch_0.parquet",
        "batch_1.parquet",
        "batch_2.parquet",
        "batch_3.parquet",
        "summary.parquet",
    ]
    for name in files:
        a = (local / "results/bootstrap" / name).read_bytes()
        b = (cluster / "results/bootstrap" / name).read_bytes()
        assert a == b, f"{name} differs between the local and the SLURM run"
