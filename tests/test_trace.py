"""`pannet trace`: from an artefact or a Table 1 cell back to the raw files and rows."""

from __future__ import annotations

import json

import _miniproject
import pytest

from pannet.cli import main
from pannet.trace import format_trace, trace

mini, mini_template = _miniproject.mini, _miniproject.mini_template  # fixtures


def test_chain_reaches_every_step_and_raw_file(mini):
    res = trace("results/tables/table1.parquet")
    assert [s["path"] for s in res["steps"]][0] == "results/tables/table1.parquet"
    assert {s["path"] for s in res["steps"]} == {
        "results/tables/table1.parquet",
        "results/cohort/analysis.parquet",
        "results/matching/matched.parquet",
        "results/harmonised/north/patients.parquet",
        "results/harmonised/south/patients.parquet",
    }
    match = next(s for s in res["steps"] if s["rule"] == "match")
    assert match["params"] == {"caliper": 0.2} and match["seed"] == 7
    assert "pannet.io" in match["code"]["modules"]
    assert [f["path"] for f in res["raw_files"]] == [
        "resources/demo/north/dictionary.yaml",
        "resources/demo/north/patients.csv",
        "resources/demo/south/dictionary.yaml",
        "resources/demo/south/patients.csv",
    ]
    assert "rows" not in res["raw_files"][1]


def test_table1_cell_names_raw_files_and_rows(mini):
    # SG before, age <50: north rows 1 (id 101, 45 y) and 5 (105, 42 y); south row 1
    # (201, 39 y). Non-SG <50 (103, 203) and SG >= 50 (104, 204) must not appear.
    res = trace("results/tables/table1.parquet", row="age <50", column="SG before")
    assert res["cell"]["value"] == {"before_sg": "3 (60.0)"}
    assert res["cell"]["counted"] == [
        "before_sg: 3 rows of results/cohort/analysis.parquet "
        "where group == 'SG' and age_group == '<50'"
    ]
    rows = {f["path"]: f.get("rows") for f in res["raw_files"]}
    assert rows["resources/demo/north/patients.csv"] == [1, 5]
    assert rows["resources/demo/south/patients.csv"] == [1]
    assert rows["resources/demo/north/dictionary.yaml"] is None
    text = format_trace(res)
    assert "resources/demo/north/patients.csv" in text and "rows 1, 5 (2 rows)" in text


def test_after_matching_column_uses_the_matched_cohort(mini):
    res = trace("results/tables/table1.parquet", row="age_group=<50", column="non-SG after")
    # Matched non-SG: 102 (63 y) and 202 (55 y): none under 50.
    assert res["cell"]["value"] == {"after_nonsg": "0 (0.0)"}
    assert all("rows" not in f for f in res["raw_files"])
    res = trace("results/tables/table1.parquet", row="age 50-59", column="non-SG after")
    rows = {f["path"]: f.get("rows") for f in res["raw_files"]}
    assert rows["resources/demo/south/patients.csv"] == [2]
    assert rows["resources/demo/north/patients.csv"] is None


def test_row_of_a_patient_level_table(mini):
    res = trace("results/cohort/analysis.parquet", row="patient_key=ks203")
    rows = {f["path"]: f.get("rows") for f in res["raw_files"]}
    assert rows == {
        "resources/demo/north/dictionary.yaml": None,
        "resources/demo/north/patients.csv": None,
        "resources/demo/south/dictionary.yaml": None,
        "resources/demo/south/patients.csv": [3],
    }


def test_unknown_row_is_a_clear_error(mini, capsys):
    assert (
        main(["trace", "results/tables/table1.parquet", "--row", "age 99", "--column", "SG before"])
        == 2
    )
    assert "rows are:" in capsys.readouterr().err


def test_cli_json(mini, capsys):
    code = main(
        [
            "trace",
            "results/tables/table1.parquet",
            "--row",
            "age <50",
            "--column",
            "SG before",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cell"]["level"] == "<50"


@pytest.mark.workflow
def test_demo_table1_cell_names_raw_files_and_rows(demo_run, root, monkeypatch, capsys):
    from pannet.io import read_parquet

    monkeypatch.chdir(root)
    res = trace("results/tables/table1.parquet", row="age <50", column="SG before")
    t1 = read_parquet(demo_run / "tables/table1.parquet")
    n = int(t1.loc[(t1["variable"] == "age_group") & (t1["level"] == "<50"), "before_sg_n"].iloc[0])
    assert res["cell"]["counted"][0].startswith(f"before_sg: {n} rows of ")
    harmonised = [s for s in res["steps"] if "/harmonised/" in s["path"] and "rows" in s]
    patient_steps = [s for s in harmonised if s["path"].endswith("patients.parquet")]
    # Every patient counted is found in exactly one site's harmonised patients table.
    assert sum(s["rows"]["patient_keys"] for s in patient_steps) == n
    with_rows = [f for f in res["raw_files"] if f.get("rows")]
    assert with_rows, "the trace must name raw rows"
    assert sum(len(f["rows"]) for f in with_rows) >= n
    assert (
        main(
            ["trace", "results/tables/table1.parquet", "--row", "age <50", "--column", "SG before"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert all(f["path"] in out for f in with_rows)
