"""Provenance in every artefact and the environment record (environment.json)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from pannet import provenance
from pannet.io import read_provenance, write_parquet, write_sidecar

ROOT = Path(__file__).resolve().parents[1]


def test_parquet_record_fields(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    raw = tmp_path / "raw.csv"
    raw.write_text("a\n1\n")
    write_parquet(
        pd.DataFrame({"a": [1]}),
        "results/x.parquet",
        rule="r",
        inputs={"raw": str(raw)},  # absolute: recorded relative to the project root
        params={"k": (1, 2)},
        seed=3,
    )
    rec = read_provenance("results/x.parquet")
    assert rec["rule"] == "r" and rec["seed"] == 3 and rec["params"] == {"k": [1, 2]}
    import hashlib

    assert rec["inputs"] == [{"path": "raw.csv", "sha256": hashlib.sha256(b"a\n1\n").hexdigest()}]
    code = rec["code"]
    assert {"commit", "dirty", "pannet", "modules"} <= set(code)
    import pannet.io

    assert (
        code["modules"]["pannet.io"]
        == hashlib.sha256(Path(pannet.io.__file__).read_bytes()).hexdigest()
    )
    env = rec["environment"]
    assert env["environment_record"] == "results/provenance/environment.json"
    assert env["fingerprint"] == provenance.environment_fingerprint()
    assert env["packages"]["pandas"] == pd.__version__
    assert "job" not in rec  # not run by Snakemake


def test_sidecar_records_the_output_hash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("fig.png").write_bytes(b"png")
    side = write_sidecar("fig.png", rule="fig", inputs=[])
    rec = json.loads(side.read_text())
    assert rec["output"]["path"] == "fig.png"
    import hashlib

    assert rec["output"]["sha256"] == hashlib.sha256(b"png").hexdigest()
    assert read_provenance("fig.png") == rec


def test_now_iso_honours_source_date_epoch(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")
    assert provenance.now_iso() == "1970-01-01T00:00:00+00:00"


def test_environment_record_contents():
    rec = provenance.environment_record()
    assert rec["python"]["version"] == sys.version.split()[0]
    assert rec["packages"]["numpy"] and rec["packages"]["snakemake"]
    assert rec["lockfile"]["sha256"] == provenance.lockfile_sha256()
    assert rec["fingerprint"] == provenance.environment_fingerprint()
    assert rec["os"]["system"] and rec["cpu"]["logical_cores"] == os.cpu_count()
    apis = {p.get("user_api") for p in rec["threads"]["threadpools"]}
    assert "blas" in apis
    json.dumps(rec)  # serialisable as written


def test_fingerprint_lists_every_distribution():
    from importlib import metadata

    names = {d.split("==")[0] for d in provenance.installed_distributions()}
    for dist in ("pandas", "numpy", "pyarrow", "snakemake"):
        assert dist in names
    assert len(names) >= len({d.metadata["Name"].lower() for d in metadata.distributions()}) - 2


def test_snakemake_job_context_is_recorded(tmp_path):
    """A real (tiny) Snakemake run: the record names rule, wildcards, outputs, params
    and every declared input, including ones the script did not pass."""
    (tmp_path / "in.txt").write_text("x\n")
    (tmp_path / "other.txt").write_text("y\n")
    (tmp_path / "step.py").write_text(
        "import pandas as pd\n"
        "from pannet.io import write_parquet\n"
        "write_parquet(pd.DataFrame({'a': [1]}), snakemake.output[0], rule=snakemake.rule,\n"
        "              inputs=[snakemake.input.main], params=dict(snakemake.params))\n"
    )
    (tmp_path / "Snakefile").write_text(
        "rule step:\n"
        "    input: main='in.txt', extra='other.txt'\n"
        "    output: 'results/{name}.parquet'\n"
        "    params: alpha=0.05\n"
        "    script: 'step.py'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--cores",
            "1",
            "--quiet",
            "all",
            "--",
            "results/demo.parquet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = read_provenance(tmp_path / "results/demo.parquet")
    assert rec["rule"] == "step"
    assert [i["path"] for i in rec["inputs"]] == ["in.txt", "other.txt"]
    assert rec["job"]["wildcards"] == {"name": "demo"}
    assert rec["job"]["outputs"] == ["results/demo.parquet"]
    assert rec["job"]["params"] == {"alpha": 0.05}
    assert len(rec["job"]["config_sha256"]) == 64
