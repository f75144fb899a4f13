"""Incremental reruns that are right, checked with ``snakemake -n`` on a completed demo run.

(a) nothing to do; (b) one site's export changes: only that site's per-site jobs and the
shared downstream jobs are planned; (c) one module changes: only the rules that list it
(transitively, through ``pannet_modules``) and their dependants.

Each plan is read from the dry run's job blocks (rule, wildcards and Snakemake's own
reason), so the test also proves *why* a job is planned.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pannet.deps import module_closure

pytestmark = [pytest.mark.workflow, pytest.mark.slow]

# A job block; the members of a group job (the bootstrap batches) are printed indented
# one level deeper under their "Group job" line.
JOB = re.compile(r"^( *)(?:local)?(?:rule|checkpoint) (\w+):\n((?:\1    .*\n?)*)", re.MULTILINE)


def dry_run(project: Path) -> list[dict]:
    """Jobs ``snakemake -n`` plans in ``project``: rule, wildcards, input files, reason."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--cores", "1"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(project / "src")},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = []
    for m in JOB.finditer(proc.stdout + "\n" + proc.stderr):
        body = m.group(3)
        wc = re.search(r"^ +wildcards: (.*)$", body, re.MULTILINE)
        inputs = re.search(r"^ +input: (.*)$", body, re.MULTILINE)
        reason = re.search(r"^ +reason: (.*)$", body, re.MULTILINE)
        jobs.append(
            {
                "rule": m.group(2),
                "wildcards": dict(
                    kv.split("=", 1) for kv in (wc.group(1).split(", ") if wc else [])
                ),
                "input": inputs.group(1).split(", ") if inputs else [],
                "reason": reason.group(1) if reason else "",
            }
        )
    return jobs


def bump(path: Path) -> None:
    """Make ``path`` newer than everything made from it (its content is unchanged)."""
    t = time.time() + 5
    os.utime(path, (t, t))


def test_nothing_to_do_after_a_completed_run(workflow_copy):
    assert dry_run(workflow_copy) == []


def test_one_site_export_changed(workflow_copy):
    import yaml

    from pannet.sites import raw_files

    config = yaml.safe_load((workflow_copy / "config/config.yaml").read_text())
    sites = sorted(config["sites"])
    changed = sites[0]
    cwd = os.getcwd()
    os.chdir(workflow_copy)
    try:
        files = raw_files(config["sites"][changed])
    finally:
        os.chdir(cwd)
    for f in files:
        bump(workflow_copy / f)
    jobs = dry_run(workflow_copy)
    assert jobs, "a changed export must rerun its site's jobs"
    per_site = [j for j in jobs if "site" in j["wildcards"]]
    assert per_site and {j["wildcards"]["site"] for j in per_site} == {changed}, per_site
    direct = {j["rule"] for j in jobs if j["reason"].startswith("Updated input files")}
    assert direct and all(
        j["wildcards"].get("site") == changed
        for j in jobs
        if j["reason"].startswith("Updated input files")
    )
    # Everything else is planned only because an upstream job will remake its input.
    for j in jobs:
        assert j["reason"].startswith(
            ("Updated input files", "Input files updated by another job")
        ), j
    assert "manifest" in {j["rule"] for j in jobs}
    assert direct <= {j["rule"] for j in per_site}


def _rules_listing(project: Path, module: str) -> set[str]:
    """Rules whose ``modules=pannet_modules(...)`` input reaches ``module``."""
    rules = set()
    for smk in (project / "workflow/rules").glob("*.smk"):
        text = smk.read_text()
        for m in re.finditer(r"^rule (\w+):\n((?:[ \t].*\n|\n)*)", text, re.MULTILINE):
            mods = re.search(r"modules=pannet_modules\(([^)]*)\)", m.group(2))
            if mods and module in module_closure(*re.findall(r'"([\w.]+)"', mods.group(1))):
                rules.add(m.group(1))
    return rules


@pytest.mark.parametrize("module", ["pannet.matching", "pannet.harmonise"])
def test_one_module_changed(workflow_copy, module):
    path = workflow_copy / "src" / Path(*module.split(".")).with_suffix(".py")
    if not path.exists():
        pytest.skip(f"{module} is not part of this workflow")
    expected_direct = _rules_listing(workflow_copy, module)
    assert expected_direct, f"no rule lists {module}: pannet_modules is not wired"
    path.write_text(path.read_text() + "\n# an edit\n")
    jobs = dry_run(workflow_copy)
    rel = path.relative_to(workflow_copy).as_posix()
    # Snakemake's own view of the wiring: every rule that lists the module is planned,
    # with the module among its job's inputs, and no other planned job takes it.
    wired = {j["rule"] for j in jobs if rel in j["input"]}
    assert wired == expected_direct, (wired, expected_direct)
    # Snakemake names the edited module in the reason only of the jobs it reaches first.
    # A job below one of them already has a reason when its turn comes, so its own
    # mtime check is skipped (snakemake 9.27 dag.py, update_needrun: `if not reason:`)
    # and it reports "Input files updated by another job" even when it lists the module.
    roots = {j["rule"] for j in jobs if rel in j["reason"]}
    assert roots and roots <= expected_direct, (roots, expected_direct)
    # Every other planned job is there only because a planned job remakes its input:
    # nothing upstream of the module's first user (validation, harmonisation, cohort
    # building for pannet.matching) is planned.
    for j in jobs:
        if rel in j["reason"]:
            assert j["reason"].startswith("Updated input files"), j
        else:
            assert j["reason"].startswith("Input files updated by another job"), j
