"""Each documented demo defect (resources/demo/defects.yaml) ends where it should, and bad
exports give a located quarantine row or one located stop message - never a crash."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from conftest import ROOT, copy_project
from test_privacy_ledger import cohort_results, run_cohort  # noqa: F401 - fixture

from pannet.validation import REDACTED

DEFECTS = yaml.safe_load((ROOT / "resources" / "demo" / "defects.yaml").read_text())["defects"]


def _quarantine(results, site: str) -> pd.DataFrame:
    return pd.read_parquet(results / "quarantine" / f"{site}.parquet")


def _fate(results, site: str, row: int) -> pd.Series:
    led = pd.read_parquet(results / "cohort" / "ledger.parquet")
    hit = led[(led.site == site) & (led.table == "patients") & (led.source_row == row)]
    assert len(hit) == 1, (site, row)
    return hit.iloc[0]


@pytest.mark.workflow
@pytest.mark.parametrize("defect", DEFECTS, ids=[d["id"] for d in DEFECTS])
def test_documented_defect_is_caught_where_documented(defect, cohort_results):  # noqa: F811
    if defect["expected_outcome"] == "quarantine":
        q = _quarantine(cohort_results, defect["site"])
        hit = q[
            (q.source_row == defect["source_row"])
            & (q.column == defect["column"])
            & (q.rule == defect["rule"])
        ]
        assert len(hit) == 1, q[q.source_row == defect["source_row"]].to_string()
        row = hit.iloc[0]
        assert row["file"].endswith(defect["file"])
        assert row["table"] == "patients"
        is_identifier = defect["kind"] == "bad_check_digit"
        if is_identifier:
            assert row["value"] == REDACTED
        elif row["stage"] == "cdm":  # a date-order rule quotes both dates
            assert f"{row['cdm_column']}={defect['value']}" in row["value"]
        else:
            assert row["value"] == str(defect["value"])
        stage = {"validate_raw": ("raw", "harmonise"), "validate_cdm": ("cdm",)}[
            defect["caught_by"]
        ]
        assert row["stage"] in stage
        fate = _fate(cohort_results, defect["site"], defect["source_row"])
        assert fate["fate"] == "quarantined" and defect["rule"] in fate["reason"].split(",")
    elif defect["expected_outcome"] == "merge":
        kept_site = defect["keep"].split()[0]
        recs = {r["site"]: r["source_row"] for r in defect["records"]}
        kept = _fate(cohort_results, kept_site, recs[kept_site])
        for site, row in recs.items():
            if site != kept_site:
                dup = _fate(cohort_results, site, row)
                assert dup["fate"] == "merged_duplicate"
                assert dup["reason"] == f"merged into {kept_site} row {recs[kept_site]}"
                assert dup["patient_key"] == kept["patient_key"]
        assert kept["fate"] == ("included" if defect["eligible_otherwise"] else "excluded")
        an = pd.read_parquet(cohort_results / "cohort" / "analysis.parquet").set_index(
            "patient_key"
        )
        assert an.loc[kept["patient_key"], "group"] == defect["group_after_merge"]
        assert an.loc[kept["patient_key"], "site"] == kept_site
        # union of treatments: the Uppsala record's treatments are attached too
        led = pd.read_parquet(cohort_results / "cohort" / "ledger.parquet")
        tr = led[(led.table == "treatments") & (led.patient_key == kept["patient_key"])]
        assert set(tr.loc[tr.fate == "attached", "site"]) == set(recs)
    else:
        pytest.fail(f"defect {defect['id']}: no test for outcome {defect['expected_outcome']!r}")


@pytest.mark.workflow
def test_unknown_code_gives_a_located_quarantine_row(tmp_path, cohort_results):  # noqa: F811
    project = copy_project(tmp_path / "project")
    path = project / "resources" / "demo" / "uppsala" / "patienter.csv"
    lines = path.read_text(encoding="utf-8").split("\n")
    header = lines[0].split(";")
    col = header.index("kon")
    row = 10  # data row 10 = line 11
    cells = lines[row].split(";")
    cells[col] = "Q"
    lines[row] = ";".join(cells)
    path.write_text("\n".join(lines), encoding="utf-8")
    run_cohort(project, "results/quarantine/uppsala.parquet")
    q = _quarantine(project / "results", "uppsala")
    hit = q[(q.source_row == row) & (q.column == "kon")]
    assert len(hit) == 1
    r = hit.iloc[0]
    assert (r["site"], r["value"], r["rule"], r["table"]) == (
        "uppsala",
        "Q",
        "code_list",
        "patients",
    )
    assert r["file"] == "resources/demo/uppsala/patienter.csv"
    assert "code list" in r["message"]


@pytest.mark.workflow
def test_missing_column_stops_with_one_located_message(tmp_path, cohort_results):  # noqa: F811
    project = copy_project(tmp_path / "project")
    path = project / "resources" / "demo" / "uppsala" / "patienter.csv"
    df = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    df.drop(columns="who_grad").to_csv(path, sep=";", index=False)
    proc = run_cohort(project, "results/quarantine/uppsala.parquet", check=False)
    assert proc.returncode != 0
    err = proc.stderr
    assert "Traceback (most recent call last)" not in err
    msg = "validate_raw[uppsala]: site 'uppsala', file 'resources/demo/uppsala/patienter.csv', column 'who_grad'"
    assert err.count(msg) == 1, err[-3000:]
    line = next(x for x in err.splitlines() if x.startswith(msg))
    assert "missing" in line and "Fix:" in line
