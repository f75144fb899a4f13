"""`pannet export-crate`: the run as a Workflow Run RO-Crate."""

from __future__ import annotations

import json

import _miniproject

from pannet.cli import main

mini, mini_template = _miniproject.mini, _miniproject.mini_template  # fixtures


def test_export_crate(mini, tmp_path):
    assert main(["export-crate", str(tmp_path / "crate")]) == 0
    meta = json.loads((tmp_path / "crate" / "ro-crate-metadata.json").read_text())
    graph = {e["@id"]: e for e in meta["@graph"]}
    root_ds = graph["./"]
    profiles = {c["@id"] for c in root_ds["conformsTo"]}
    assert "https://w3id.org/ro/wfrun/workflow/0.5" in profiles
    assert root_ds["mainEntity"]["@id"] == "Snakefile"
    [action] = [e for e in graph.values() if e.get("@type") == "CreateAction"]
    assert action["instrument"]["@id"] == "Snakefile"
    results = {r["@id"] for r in action["result"]}
    assert "results/tables/table1.parquet" in results
    assert "results/provenance/manifest.parquet" in results
    assert graph["results/tables/table1.parquet"]["sha256"]
    # Raw exports are described (path + hash), not copied, unless asked for.
    objects = {o["@id"] for o in action["object"]}
    assert "#raw/resources/demo/north/patients.csv" in objects
    assert not (tmp_path / "crate" / "resources").exists()
    assert (tmp_path / "crate" / "results/tables/table1.parquet").exists()
    assert (tmp_path / "crate" / "src/pannet/io.py").exists()
    # A second export into the same folder is refused rather than mixed.
    assert main(["export-crate", str(tmp_path / "crate")]) == 2


def test_export_crate_with_raw(mini, tmp_path):
    assert main(["export-crate", str(tmp_path / "crate"), "--include-raw"]) == 0
    assert (tmp_path / "crate/resources/demo/north/patients.csv").exists()
