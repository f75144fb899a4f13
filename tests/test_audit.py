"""`pannet audit`: ok on a fresh run; tampered / stale / orphaned after a change, by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _miniproject
import pytest

from pannet.audit import audit
from pannet.cli import main

mini, mini_template = _miniproject.mini, _miniproject.mini_template  # fixtures


def statuses(root: Path) -> dict[str, str]:
    return {f.path: f.status for f in audit(root / "results")}


def flip_byte(path: Path, offset: int = -3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_fresh_run_is_all_ok(mini, capsys):
    st = statuses(mini)
    assert set(st.values()) == {"ok"}, st
    # Every artefact, the sidecar and the environment record are in the manifest.
    assert {
        "results/harmonised/north/patients.parquet",
        "results/harmonised/south/patients.parquet",
        "results/cohort/analysis.parquet",
        "results/matching/matched.parquet",
        "results/tables/table1.parquet",
        "results/figures/km.png",
        "results/figures/km.png.prov.json",
        "results/provenance/environment.json",
        "results/provenance/manifest.parquet",
    } == set(st)
    assert main(["audit", "results"]) == 0
    assert "9 artefacts: 9 ok, 0 stale, 0 tampered, 0 orphaned" in capsys.readouterr().out


def test_one_byte_in_an_artefact_is_tampered_and_downstream_stale(mini, capsys):
    flip_byte(mini / "results/cohort/analysis.parquet", offset=100)
    st = statuses(mini)
    assert st["results/cohort/analysis.parquet"] == "tampered"
    assert st["results/matching/matched.parquet"] == "stale"
    assert st["results/tables/table1.parquet"] == "stale"
    assert st["results/harmonised/north/patients.parquet"] == "ok"
    assert main(["audit", "results"]) == 1
    out = capsys.readouterr().out
    assert "tampered  results/cohort/analysis.parquet" in out


def test_rendered_file_tamper_is_caught(mini):
    flip_byte(mini / "results/figures/km.png")
    st = statuses(mini)
    assert st["results/figures/km.png"] == "tampered"
    assert st["results/tables/table1.parquet"] == "ok"


def test_one_byte_in_a_raw_input_makes_its_consumers_stale(mini):
    raw = mini / "resources/demo/south/patients.csv"
    raw.write_text(raw.read_text().replace("204,66", "204,67"))
    st = statuses(mini)
    assert st["results/harmonised/south/patients.parquet"] == "stale"
    assert st["results/harmonised/north/patients.parquet"] == "ok"
    assert st["results/tables/table1.parquet"] == "stale"
    [f] = [f for f in audit(mini / "results") if f.path.endswith("south/patients.parquet")]
    assert "input resources/demo/south/patients.csv changed since it was made" in f.reasons


def test_changed_module_makes_artefacts_stale(mini):
    # This process imported pannet.audit before making the artefacts, so every one of
    # them records that module's hash as part of its code version.
    (mini / "src/pannet/audit.py").write_text(
        (mini / "src/pannet/audit.py").read_text() + "\n# edited\n"
    )
    findings = {f.path: f for f in audit(mini / "results")}
    f = findings["results/tables/table1.parquet"]
    assert f.status == "stale"
    assert "code of pannet.audit changed since it was made" in f.reasons


def test_metadata_only_modules_do_not_make_artefacts_stale(mini):
    # pannet.io / pannet.provenance are imported by every step for provenance only.
    (mini / "src/pannet/io.py").write_text((mini / "src/pannet/io.py").read_text() + "\n# x\n")
    assert set(statuses(mini).values()) == {"ok"}


def test_orphans(mini):
    stray = mini / "results/harmonised/west/patients.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"not made by this workflow")
    (mini / "resources/demo/north/dictionary.yaml").unlink()
    st = statuses(mini)
    assert st["results/harmonised/west/patients.parquet"] == "orphaned"
    assert st["results/harmonised/north/patients.parquet"] == "orphaned"
    assert st["results/cohort/analysis.parquet"] == "stale"


def test_test_evidence_is_not_an_orphan(mini):
    # The browser test keeps its screenshot under results/test-evidence/.
    shot = mini / "results/test-evidence/study_report.png"
    shot.parent.mkdir(parents=True)
    shot.write_bytes(b"\x89PNG evidence")
    st = statuses(mini)
    assert "results/test-evidence/study_report.png" not in st
    assert set(st.values()) == {"ok"}, st


def test_rule_removed_from_the_workflow_is_orphaned(mini):
    sf = mini / "Snakefile"
    sf.write_text(sf.read_text().replace("rule table1:", "rule table_one:"))
    st = statuses(mini)
    assert st["results/tables/table1.parquet"] == "orphaned"
    assert st["results/matching/matched.parquet"] == "ok"


def test_missing_manifest_fails(mini):
    (mini / "results/provenance/manifest.parquet").unlink()
    assert main(["audit", "results"]) == 1


def test_environment_change_is_stale(mini):
    env = mini / "results/provenance/environment.json"
    rec = json.loads(env.read_text())
    rec["fingerprint"] = "0" * 64
    env.write_text(json.dumps(rec))
    findings = {f.path: f for f in audit(mini / "results")}
    assert findings["results/provenance/environment.json"].status == "tampered"
    assert findings["results/tables/table1.parquet"].status == "stale"
    assert any(
        "another environment" in r for r in findings["results/tables/table1.parquet"].reasons
    )


def test_console_entry_point(mini):
    exe = Path(sys.executable).with_name("pannet")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pannet.cli"]
    env = {**os.environ, "PYTHONPATH": str(mini / "src")}
    proc = subprocess.run(
        [*cmd, "audit", "results", "--json"], cwd=mini, capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert {r["status"] for r in json.loads(proc.stdout)} == {"ok"}


@pytest.mark.workflow
def test_demo_run_audits_clean(demo_run, capsys):
    code = main(["audit", str(demo_run)])
    out = capsys.readouterr().out
    assert code == 0, out


@pytest.mark.workflow
def test_demo_one_byte_in_an_artefact_or_a_raw_file_is_named(workflow_copy):
    import yaml

    from pannet.sites import raw_files

    results = workflow_copy / "results"
    table1 = results / "tables/table1.parquet"
    original = table1.read_bytes()
    flip_byte(table1, offset=len(original) // 2)
    st = {f.path: f.status for f in audit(results)}
    assert st["results/tables/table1.parquet"] == "tampered"
    assert main(["audit", str(results)]) == 1
    table1.write_bytes(original)
    assert {f.status for f in audit(results)} == {"ok"}

    config = yaml.safe_load((workflow_copy / "config/config.yaml").read_text())
    site = sorted(config["sites"])[0]
    cwd = os.getcwd()
    os.chdir(workflow_copy)
    try:
        raw = sorted(raw_files(config["sites"][site]))[0]
    finally:
        os.chdir(cwd)
    flip_byte(workflow_copy / raw, offset=len((workflow_copy / raw).read_bytes()) // 2)
    findings = audit(results)
    direct = [f for f in findings if f"input {raw} changed since it was made" in f.reasons]
    assert direct and all(f.status == "stale" for f in direct)
    assert all(site in f.path for f in direct), [f.path for f in direct]
    others = [f for f in findings if "/harmonised/" in f.path and f"/{site}/" not in f.path]
    assert others and {f.status for f in others} == {"ok"}
