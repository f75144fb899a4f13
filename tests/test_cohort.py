"""Cohort merge, eligibility, attrition and the ledger on small hand-made CDM frames."""

from __future__ import annotations

import pandas as pd
import pytest

from pannet import cdm
from pannet.cohort import build_cohort, flow_diagram, merge_duplicates
from pannet.validation import QUARANTINE_COLUMNS

CRITERIA = {
    "require_distant_metastases": True,
    "excluded_syndromes": ["MEN1", "VHL", "NF1", "TSC"],
    "allowed_grades": ["G1", "G2"],
    "baseline_start": "2000-01-01",
    "baseline_end": "2019-12-31",
}


def patients(site: str, rows: list[dict]) -> pd.DataFrame:
    base = {
        "site": site,
        "sex": "Female",
        "age_at_diagnosis_days": 20000,
        "diagnosis_date": "2005-01-01",
        "metastasis_date": "2005-02-01",
        "hereditary_syndrome": "none",
        "who_grade": "G1",
        "hormonal_function": "Functioning",
        "primary_size_cm": 3.0,
        "liver_metastases_count": 2,
        "extra_abdominal_metastases": False,
        "charlson_index": 0,
        "last_followup_date": "2010-01-01",
    }
    df = pd.DataFrame([{**base, **r, "source_row": i + 1} for i, r in enumerate(rows)])
    out = pd.DataFrame(index=df.index)
    for col, (dtype, _) in cdm.HARMONISED_PATIENT_COLUMNS.items():
        v = df[col] if col in df else pd.Series(pd.NA, index=df.index)
        out[col] = pd.to_datetime(v) if dtype.startswith("datetime") else v.astype(dtype)
    return out


def treatments(site: str, rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame([{**r, "site": site, "source_row": i + 1} for i, r in enumerate(rows)])
    out = pd.DataFrame(index=df.index)
    for col, (dtype, _) in cdm.HARMONISED_TREATMENT_COLUMNS.items():
        v = df[col] if col in df else pd.Series(pd.NA, index=df.index)
        out[col] = pd.to_datetime(v) if dtype.startswith("datetime") else v.astype(dtype)
    return out


def quarantine(site: str, rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    df = pd.DataFrame(
        [
            {
                "site": site,
                "file": f"{site}.csv",
                "table": t,
                "source_row": r,
                "column": "c",
                "cdm_column": "c",
                "value": "v",
                "rule": rule,
                "stage": "cdm",
                "message": "m",
            }
            for t, r, rule in rows
        ],
        columns=list(QUARANTINE_COLUMNS),
    )
    return df.astype(QUARANTINE_COLUMNS)


@pytest.fixture
def two_sites():
    a = patients(
        "a",
        [
            {"patient_key": "k1"},  # included, non-SG
            {
                "patient_key": "k2",
                "primary_resection_date": "2006-03-01",
                "resection_type": "enucleation",
                "clavien_dindo": 2,
            },  # included, SG
            {"patient_key": "k3", "metastasis_date": None},  # no metastases
            {
                "patient_key": "k4",
                "hereditary_syndrome": "MEN1",
                "metastasis_date": None,
            },  # no mets first
            {"patient_key": "k5", "who_grade": "G3"},  # grade
            {
                "patient_key": "k6",
                "metastasis_date": "1998-05-01",
                "diagnosis_date": "1998-01-01",
            },  # baseline
            {"patient_key": "k7", "who_grade": None},  # quarantined (rule required)
            {
                "patient_key": "k8",
                "last_followup_date": "2008-01-01",
                "primary_size_cm": None,
            },  # referral
        ],
    )
    b = patients(
        "b",
        [
            {
                "patient_key": "k8",
                "last_followup_date": "2012-01-01",
                "primary_size_cm": None,
                "ki67": 4.0,
            },
            {"patient_key": "k9", "hereditary_syndrome": "VHL"},
        ],
    )
    b.loc[0, "charlson_index"] = pd.NA
    ta = treatments(
        "a",
        [
            {
                "patient_key": "k1",
                "treatment": "chemotherapy",
                "line": 1,
                "start_date": "2005-03-01",
            },
            {"patient_key": "k3", "treatment": "prrt", "start_date": "2006-01-01"},
            {"patient_key": "k7", "treatment": "prrt", "start_date": "2006-01-01"},
            {"patient_key": "k8", "treatment": "somatostatin_analogue", "start_date": "2005-03-01"},
            {"patient_key": "k1", "treatment": "bogus", "start_date": "2005-03-01"},
        ],
    )
    tb = treatments(
        "b",
        [
            {"patient_key": "k8", "treatment": "somatostatin_analogue", "start_date": "2005-03-01"},
            {"patient_key": "k8", "treatment": "liver_resection", "start_date": "2009-03-01"},
        ],
    )
    qa = quarantine("a", [("patients", 7, "required"), ("treatments", 5, "code_set")])
    qb = quarantine("b", [])
    return {"a": (a, ta, qa), "b": (b, tb, qb)}


def test_every_raw_row_ends_in_exactly_one_place(two_sites):
    res = build_cohort(two_sites, CRITERIA)
    led = res.ledger
    assert not led.duplicated(["site", "table", "source_row"]).any()
    for site, (p, t, _) in two_sites.items():
        lp = led[(led.site == site) & (led.table == "patients")]
        lt = led[(led.site == site) & (led.table == "treatments")]
        assert sorted(lp.source_row) == sorted(p.source_row)
        assert sorted(lt.source_row) == sorted(t.source_row)
    fates = led[led.table == "patients"].set_index(["site", "source_row"])["fate"]
    assert fates[("a", 1)] == fates[("a", 2)] == "included"
    assert fates[("a", 7)] == "quarantined"
    assert fates[("a", 8)] == "merged_duplicate"
    assert fates[("b", 1)] == "included"
    reasons = led[led.table == "patients"].set_index(["site", "source_row"])["reason"]
    assert reasons[("a", 3)] == "no_distant_metastases"
    assert reasons[("a", 4)] == "no_distant_metastases"  # the first criterion that applies
    assert reasons[("a", 5)] == "grade_not_allowed"
    assert reasons[("a", 6)] == "baseline_outside_window"
    assert reasons[("b", 2)] == "hereditary_syndrome"
    assert reasons[("a", 8)] == "merged into b row 1"
    tf = led[led.table == "treatments"].set_index(["site", "source_row"])
    assert tf.loc[("a", 1), "fate"] == "attached"
    assert tf.loc[("a", 2), "fate"] == "excluded"
    assert tf.loc[("a", 2), "reason"] == "patient excluded: no_distant_metastases"
    assert (tf.loc[("a", 3), "fate"], tf.loc[("a", 3), "reason"]) == (
        "quarantined",
        "patient_quarantined",
    )
    assert (tf.loc[("a", 5), "fate"], tf.loc[("a", 5), "reason"]) == ("quarantined", "code_set")
    # the referral's somatostatin analogue is recorded at both sites: counted once
    assert {tf.loc[("a", 4), "fate"], tf.loc[("b", 1), "fate"]} == {"attached", "merged_duplicate"}
    assert tf.loc[("b", 2), "fate"] == "attached"


def test_merge_rule_keeps_latest_followup_and_fills_gaps(two_sites):
    res = build_cohort(two_sites, CRITERIA)
    k8 = res.cohort.set_index("patient_key").loc["k8"]
    assert k8["site"] == "b" and k8["source_row"] == 1
    assert k8["last_followup_date"] == pd.Timestamp("2012-01-01")
    assert k8["charlson_index"] == 0  # missing at b, filled from a
    assert k8["ki67"] == 4.0
    assert pd.isna(k8["primary_size_cm"])
    assert sorted(res.treatments.loc[res.treatments.patient_key == "k8", "treatment"]) == [
        "liver_resection",
        "somatostatin_analogue",
    ]


def test_merge_tie_goes_to_the_site_listed_first():
    a = patients("a", [{"patient_key": "k"}])
    b = patients("b", [{"patient_key": "k"}])
    merged, dups = merge_duplicates(pd.concat([b, a], ignore_index=True), ["a", "b"])
    assert list(merged["site"]) == ["a"]
    assert list(dups["site"]) == ["b"]


def test_attrition_adds_up_by_site_and_total(two_sites):
    res = build_cohort(two_sites, CRITERIA)
    att = res.attrition
    for site, (p, _, _) in two_sites.items():
        s = att[att.site == site].sort_values("step")
        assert s.iloc[0]["remaining"] == len(p)
        assert s.iloc[-1]["remaining"] + s["removed"].sum() == len(p)
        assert (
            s["remaining"].iloc[:-1].to_numpy() - s["removed"].iloc[1:].to_numpy()
            == s["remaining"].iloc[1:].to_numpy()
        ).all()
    total = att[att.site == "all"].set_index("criterion")
    assert total.loc["assessed", "remaining"] == 10
    assert total.loc["quarantined", "removed"] == 1
    assert total.loc["merged_duplicate", "removed"] == 1
    assert total.loc["included", "remaining"] == 3
    assert (total.loc["included", "sg"], total.loc["included", "non_sg"]) == (1, 2)
    assert list(total.index) == [
        "assessed",
        "quarantined",
        "merged_duplicate",
        "no_distant_metastases",
        "hereditary_syndrome",
        "grade_not_allowed",
        "baseline_outside_window",
        "included",
    ]


def test_unquarantined_row_without_key_is_a_located_error(two_sites):
    a, ta, qa = two_sites["a"]
    a = a.copy()
    a.loc[0, "patient_key"] = pd.NA
    with pytest.raises(ValueError, match="site 'a', patients row 1"):
        build_cohort({"a": (a, ta, qa)}, CRITERIA)


def test_flow_diagram_png(two_sites, tmp_path):
    res = build_cohort(two_sites, CRITERIA)
    out = tmp_path / "flow.png"
    flow_diagram(res.attrition, out, synthetic=True)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
