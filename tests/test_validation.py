"""great-expectations suites: raw (from a site dictionary) and CDM (the same for every site)."""

from __future__ import annotations

import pandas as pd
import pytest
from test_cohort import patients, treatments

from pannet import validation
from pannet.sites import load_dictionary


@pytest.fixture(scope="module")
def uppsala(root):
    return load_dictionary(root / "config" / "sites" / "uppsala.yaml")


def _uppsala_raw(dictionary) -> dict[str, pd.DataFrame]:
    good = {
        "personnummer": "121212-1212",
        "namn": "Test Testsson",
        "kon": "K",
        "diagnosdatum": "2005-01-01",
        "fjarrmetastas_datum": "2005-02-01",
        "arftligt_syndrom": "ingen",
        "who_grad": "G1",
        "ki67_procent": "2,5",
        "hormonproducerande": "ja",
        "primartumor_mm": "25",
        "antal_levermetastaser": "3",
        "extraabdominella_metastaser": "nej",
        "charlson": "0",
        "operationsdatum": "",
        "operationstyp": "",
        "clavien_dindo": "",
        "dodsdatum": "",
        "senaste_kontakt": "2010-01-01",
    }
    rows = [
        good,
        {**good, "personnummer": "121212-1213", "kon": "Kvinna"},  # bad check digit, bad code
        {
            **good,
            "personnummer": "450101-1235",
            "diagnosdatum": "2005-13-01",
            "ki67_procent": "2.5",
        },
        {**good, "personnummer": "460202-1232", "primartumor_mm": "900", "senaste_kontakt": "-"},
    ]
    p = pd.DataFrame(rows)
    p.insert(0, "source_row", range(1, len(p) + 1))
    p.attrs["file"] = "resources/demo/uppsala/patienter.csv"
    t = pd.DataFrame(
        [
            {
                "personnummer": "121212-1212",
                "behandling": "cytostatika",
                "linje": "1",
                "startdatum": "2005-03-01",
                "slutdatum": "",
            },
            {
                "personnummer": "999999-9999",
                "behandling": "cytostatica",
                "linje": "x",
                "startdatum": "2005-03-01",
                "slutdatum": "",
            },
        ]
    )
    t.insert(0, "source_row", range(1, len(t) + 1))
    t.attrs["file"] = "resources/demo/uppsala/behandlingar.csv"
    return {"patients": p, "treatments": t}


def _failures(results: pd.DataFrame) -> dict[tuple[str, str, str], list[int]]:
    bad = results[~results["success"]]
    return {(r.table, r.column, r.rule): list(r.failing_rows) for r in bad.itertuples()}


def test_raw_suite_finds_each_broken_rule_and_row(uppsala):
    raw = _uppsala_raw(uppsala)
    res = validation.run_suite("uppsala", "raw", validation.raw_frames("uppsala", raw, uppsala))
    assert list(res.columns) == list(validation.RESULT_COLUMNS)
    fails = _failures(res)
    assert fails == {
        ("patients", "personnummer", "identifier"): [2],
        ("patients", "kon", "code_list"): [3 - 1],
        ("patients", "diagnosdatum", "date_format"): [3],
        ("patients", "ki67_procent", "decimal"): [3],  # decimal point where a comma is due
        ("patients", "primartumor_mm", "range"): [4],
        ("patients", "senaste_kontakt", "required"): [4],
        ("treatments", "personnummer", "unknown_patient"): [2],
        ("treatments", "behandling", "code_list"): [2],
        ("treatments", "linje", "integer"): [2],
    }
    # identifiers are never copied into the results
    ident = res[res["column"] == "personnummer"]
    assert all(v == validation.REDACTED for vals in ident["failing_values"] for v in vals)
    q = validation.quarantine_from_results(res)
    row = q[(q["column"] == "kon")].iloc[0]
    assert (row["site"], row["source_row"], row["value"], row["rule"]) == (
        "uppsala",
        2,
        "Kvinna",
        "code_list",
    )
    assert row["file"] == "resources/demo/uppsala/patienter.csv"
    html = validation.render_html(res, title="t", synthetic=True)
    assert "121212-1213" not in html and "Test Testsson" not in html
    assert "<script" not in html and "http" not in html  # reads offline


def test_cdm_suite_date_order_codes_and_unknown_patients():
    p = patients(
        "a",
        [
            {"patient_key": "k1"},
            {"patient_key": "k2", "death_date": "2004-06-01"},  # death before diagnosis
            {"patient_key": "k3", "who_grade": "G9", "age_at_diagnosis_days": -3},
        ],
    )
    t = treatments(
        "a",
        [
            {
                "patient_key": "k1",
                "treatment": "chemotherapy",
                "line": 1,
                "start_date": "2005-03-01",
            },
            {"patient_key": "zz", "treatment": "prrt", "start_date": "2005-03-01"},
            {"patient_key": None, "treatment": "prrt", "start_date": "2005-03-01"},
            {"patient_key": "k1", "treatment": "magic", "start_date": "2004-01-01"},
        ],
    )
    frames = validation.cdm_frames(p, t, patients_file="p.csv", treatments_file="t.csv")
    res = validation.run_suite("a", "cdm", frames)
    fails = _failures(res)
    assert fails[("patients", "death_date", "death_after_diagnosis")] == [2]
    assert fails[("patients", "who_grade", "code_set")] == [3]
    assert fails[("patients", "age_at_diagnosis_days", "diagnosis_after_birth")] == [3]
    assert sorted(fails[("treatments", "patient_key", "unknown_patient")]) in ([2], [3])
    assert fails[("treatments", "treatment", "code_set")] == [4]
    assert fails[("treatments", "start_date", "treatment_after_diagnosis")] == [
        4
    ]  # before diagnosis
    q = validation.combine_quarantine(validation.quarantine_from_results(res))
    death = q[(q["table"] == "patients") & (q["column"] == "death_date")].iloc[0]
    assert death["value"] == "death_date=2004-06-01; diagnosis_date=2005-01-01"
    assert set(q.loc[q["table"] == "treatments", "source_row"]) == {2, 3, 4}


def test_policy_stops_with_a_located_message():
    q = pd.DataFrame(
        [
            {
                "site": "a",
                "file": "f.csv",
                "table": "patients",
                "source_row": 7,
                "column": "kon",
                "cdm_column": "sex",
                "value": "X",
                "rule": "code_list",
                "stage": "raw",
                "message": "m",
            }
        ]
    ).astype(validation.QUARANTINE_COLUMNS)
    validation.enforce_policy("a", q, {"patients": 100}, on_invalid="quarantine", max_share=0.05)
    with pytest.raises(
        validation.QuarantineLimitError, match=r"row 7, column 'kon', value 'X', rule code_list"
    ):
        validation.enforce_policy("a", q, {"patients": 10}, on_invalid="quarantine", max_share=0.05)
    with pytest.raises(validation.QuarantineLimitError, match="on_invalid is 'fail'"):
        validation.enforce_policy("a", q, {"patients": 100}, on_invalid="fail", max_share=0.05)


def test_column_batches_give_the_same_results(uppsala, monkeypatch):
    """Large tables are validated a column (pair) at a time (validation.NARROW_MIN_ROWS);
    the results, failing rows and values included, equal the one-batch run."""
    raw = _uppsala_raw(uppsala)
    frames = validation.raw_frames("uppsala", raw, uppsala)
    whole = validation.run_suite("uppsala", "raw", frames)
    monkeypatch.setattr(validation, "NARROW_MIN_ROWS", 0)
    assert len(validation._batches(frames[0])) > 1
    narrow = validation.run_suite("uppsala", "raw", frames)
    pd.testing.assert_frame_equal(narrow, whole)
    assert (~narrow["success"]).sum() == 9
    p = patients("a", [{"patient_key": "k1"}, {"patient_key": "k2", "death_date": "2004-06-01"}])
    t = treatments("a", [{"patient_key": "zz", "treatment": "prrt", "start_date": "2005-03-01"}])
    cdm = validation.cdm_frames(p, t, patients_file="p.csv", treatments_file="t.csv")
    narrow = validation.run_suite("a", "cdm", cdm)
    monkeypatch.setattr(validation, "NARROW_MIN_ROWS", 10**9)
    pd.testing.assert_frame_equal(narrow, validation.run_suite("a", "cdm", cdm))
    assert set(narrow.loc[~narrow["success"], "rule"]) >= {
        "death_after_diagnosis",
        "unknown_patient",
    }
