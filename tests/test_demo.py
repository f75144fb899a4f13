"""The synthetic demo cohort: reproducible bytes, the published Table 1 and surgery counts,
the planted defects, and the calibration of survival, progression and matching.

Everything is computed from the committed exports read back through the site dictionaries
(``pannet.sites.read_raw`` + ``to_cdm``), with the study's eligibility rules and the
``pannet.cdm`` binning, so the tests check what the workflow will see.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import yaml

from pannet import cdm, sites
from pannet.demo import generate
from pannet.demo.model import PARAMETERS

SITES = ("uppsala", "gothenburg", "boston")
GRACE = pd.Timedelta(days=90)


@pytest.fixture(scope="module")
def demo_dir(root):
    return root / "resources" / "demo"


@pytest.fixture(scope="module")
def published(root):
    return yaml.safe_load((root / "resources/published/kjaer2022.yaml").read_text())


@pytest.fixture(scope="module")
def defects(demo_dir):
    return yaml.safe_load((demo_dir / "defects.yaml").read_text())


def read_cdm(root, data_root):
    """Every site's export through its dictionary: (patients, treatments, issues)."""
    pats, trs, iss = [], [], []
    for s in SITES:
        cfg = {"dictionary": str(root / f"config/sites/{s}.yaml"), "data_dir": str(data_root / s)}
        d = sites.load_dictionary(cfg["dictionary"])
        p, t, i = sites.to_cdm(s, sites.read_raw(s, cfg, d), d)
        pats.append(p)
        trs.append(t)
        iss.append(i)
    return (
        pd.concat(pats, ignore_index=True),
        pd.concat(trs, ignore_index=True),
        pd.concat(iss, ignore_index=True),
    )


def merge_referrals(patients, treatments):
    """Keep the record with the latest follow-up, fill its gaps from the other, union treatments."""
    p = patients.sort_values(["local_id", "last_followup_date"], kind="stable")
    merged = p.groupby("local_id", sort=False).agg(
        lambda s: s.dropna().iloc[-1] if s.notna().any() else s.iloc[-1]
    )
    merged = merged.reset_index()
    t = treatments.drop_duplicates(["local_id", "treatment", "line", "start_date"])
    return merged, t


def analysis_frame(patients, treatments):
    """The derivation the workflow applies: eligibility, time zero, OS, PFS, Table 1 bins."""
    p = patients
    sg = p["primary_resection_date"].notna()
    t0 = p["primary_resection_date"].where(sg, p["metastasis_date"])
    elig = (
        p["metastasis_date"].notna()
        & p["hereditary_syndrome"].eq("none")
        & p["who_grade"].isin(["G1", "G2"])
        & t0.between(pd.Timestamp("2000-01-01"), pd.Timestamp("2019-12-31"))
    )
    e = p[elig.fillna(False)].copy()
    e["group"] = np.where(e["primary_resection_date"].notna(), "SG", "non-SG")
    e["time_zero"] = t0[e.index]
    e["os_years"] = (e["last_followup_date"] - e["time_zero"]).dt.days / 365.25
    e["os_event"] = e["death_date"].notna().astype(int)
    tr = treatments.merge(e[["local_id", "time_zero"]], on="local_id")
    later = tr[tr["start_date"] > tr["time_zero"] + GRACE].groupby("local_id")["start_date"].min()
    prog = e["local_id"].map(later)
    pfs_date = pd.concat([prog, e["death_date"]], axis=1).min(axis=1)
    e["pfs_event"] = pfs_date.notna().astype(int)
    e["pfs_years"] = (pfs_date.fillna(e["last_followup_date"]) - e["time_zero"]).dt.days / 365.25
    age = (e["time_zero"] - e["birth_date"]).dt.days / 365.25
    e["age_group"] = age.map(cdm.age_group)
    e["calendar_period"] = e["time_zero"].dt.year.map(cdm.calendar_period)
    e["charlson_group"] = e["charlson_index"].map(cdm.charlson_group)
    e["primary_size_cm"] = e["primary_size_cm"].astype(object).map(cdm.primary_size_group)
    e["liver_metastases_count"] = (
        e["liver_metastases_count"].astype(object).map(cdm.liver_metastases_group)
    )
    e["extra_abdominal_metastases"] = e["extra_abdominal_metastases"].map(
        {True: "Yes", False: "No"}
    )
    e["treated"] = (e["group"] == "SG").astype(int)
    return e.reset_index(drop=True)


@pytest.fixture(scope="module")
def cohort(root, demo_dir):
    patients, treatments, issues = read_cdm(root, demo_dir)
    merged, tr = merge_referrals(patients, treatments)
    return {
        "patients": patients,
        "treatments": treatments,
        "issues": issues,
        "analysis": analysis_frame(merged, tr),
    }


def test_regeneration_gives_identical_bytes(tmp_path, demo_dir):
    generate(tmp_path, n_patients=733)
    committed = sorted(p.relative_to(demo_dir) for p in demo_dir.rglob("*") if p.is_file())
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert fresh == committed
    for rel in committed:
        assert (tmp_path / rel).read_bytes() == (demo_dir / rel).read_bytes(), rel


def test_raw_rows_and_flow(cohort, defects):
    p = cohort["patients"]
    assert len(p) == 733
    assert p["local_id"].duplicated().sum() == 1  # the referral
    a = cohort["analysis"]
    assert len(a) == 194
    assert (a["group"] == "SG").sum() == 65 and (a["group"] == "non-SG").sum() == 129
    e = defects["expected"]
    assert (
        e["raw_patient_rows"]
        == e["included"] + e["excluded"] + e["quarantined"] + e["merged_duplicates"]
        == 733
    )
    assert (e["included"], e["SG"], e["non-SG"], e["merged_duplicates"]) == (194, 65, 129, 1)


def test_table1_before_matching_equals_publication(cohort, published):
    a = cohort["analysis"]
    for var, spec in published["table1"]["variables"].items():
        got = [
            [int(((a[var] == lev) & (a["group"] == g)).sum()) for g in ("SG", "non-SG")]
            for lev in spec["levels"]
        ]
        assert got == spec["before"], var


def test_surgery_outcomes_equal_publication(cohort, published):
    sg = cohort["analysis"][cohort["analysis"]["group"] == "SG"]
    assert sg["resection_type"].value_counts().to_dict() == published["surgery"]["resection_type"]
    assert (sg["clavien_dindo"] >= 2).sum() == published["surgery"]["clavien_dindo_ge2"]["n"]
    assert (sg["clavien_dindo"] >= 3).sum() == published["surgery"]["clavien_dindo_ge3"]["n"]
    d90 = (sg["os_event"] == 1) & (sg["os_years"] * 365.25 <= 90)
    assert d90.sum() == published["surgery"]["mortality_90d"]["n"]


def test_every_defect_is_where_defects_yaml_says(cohort, defects, demo_dir):
    issues, p = cohort["issues"], cohort["patients"]
    raw_level = [d for d in defects["defects"] if d["caught_by"] == "validate_raw"]
    found = {
        (s, int(r), c, rule)
        for s, r, c, rule in zip(
            issues["site"], issues["source_row"], issues["column"], issues["rule"], strict=True
        )
    }
    for d in raw_level:
        assert (d["site"], d["source_row"], d["column"], d["rule"]) in found, d["id"]
    # nothing else in the exports breaks a rule of the dictionaries
    assert len(issues) == len(raw_level)
    for d in defects["defects"]:
        if d["kind"] == "death_before_diagnosis":
            row = p[(p["site"] == d["site"]) & (p["source_row"] == d["source_row"])].iloc[0]
            assert row["death_date"] < row["diagnosis_date"]
            assert row["death_date"] == pd.Timestamp(d["value"])
        if d["kind"] == "referral_duplicate":
            recs = [
                p[(p["site"] == r["site"]) & (p["source_row"] == r["source_row"])].iloc[0]
                for r in d["records"]
            ]
            assert recs[0]["local_id"] == recs[1]["local_id"] == d["local_id"]
            shared = [
                "sex",
                "birth_date",
                "diagnosis_date",
                "metastasis_date",
                "hereditary_syndrome",
                "who_grade",
                "ki67",
                "hormonal_function",
                "primary_size_cm",
                "liver_metastases_count",
                "extra_abdominal_metastases",
                "charlson_index",
            ]
            for c in shared:
                assert str(recs[0][c]) == str(recs[1][c]), c
            assert pd.isna(recs[0]["primary_resection_date"])
            assert recs[1]["last_followup_date"] > recs[0]["last_followup_date"]
            assert d["local_id"] in set(cohort["analysis"]["local_id"])
        elif d["expected_outcome"] == "quarantine":
            # placed on a patient the eligibility criteria exclude anyway
            row = p[(p["site"] == d["site"]) & (p["source_row"] == d["source_row"])].iloc[0]
            assert pd.isna(row["metastasis_date"])


def test_dates_in_order_apart_from_the_defects(cohort, defects):
    """Only the planted defects break a date-order rule: the rest reaches the analysis."""
    p = cohort["patients"].copy()
    bad = {(d["site"], d["source_row"]) for d in defects["defects"] if "source_row" in d}
    p = p[[(s, r) not in bad for s, r in zip(p["site"], p["source_row"], strict=True)]]
    assert (p["birth_date"] < p["diagnosis_date"]).all()
    assert (p["metastasis_date"].isna() | (p["metastasis_date"] >= p["diagnosis_date"])).all()
    res = p["primary_resection_date"]
    assert (res.isna() | (res >= p["diagnosis_date"])).all()
    dead = p["death_date"].notna()
    assert (p.loc[dead, "death_date"] == p.loc[dead, "last_followup_date"]).all()
    for c in ("diagnosis_date", "metastasis_date", "primary_resection_date"):
        assert (p[c].isna() | (p["last_followup_date"] >= p[c])).all(), c
    t = cohort["treatments"].merge(
        p[["site", "local_id", "diagnosis_date", "last_followup_date"]], on=["site", "local_id"]
    )
    assert len(t) == len(cohort["treatments"])  # no treatment row on a defect patient
    assert (t["start_date"] >= t["diagnosis_date"]).all()
    assert (t["start_date"] <= t["last_followup_date"]).all()
    assert (t["end_date"].isna() | (t["end_date"] >= t["start_date"])).all()
    assert (t["end_date"].isna() | (t["end_date"] <= t["last_followup_date"])).all()


def test_synthetic_markers_and_identifiers(demo_dir, cohort):
    import openpyxl

    assert "SYNTHETIC" in (demo_dir / "README.md").read_text()
    for s in SITES:
        assert "SYNTHETIC" in (demo_dir / s / "README.md").read_text()
    wb = openpyxl.load_workbook(demo_dir / "gothenburg/sahlgrenska_pannet.xlsx", read_only=True)
    assert "_synthetic" in wb.sheetnames
    assert "SYNTHETIC" in (demo_dir / "boston/PANNET_DataDictionary.csv").read_text()
    assert (
        pd.read_csv(demo_dir / "uppsala/patienter.csv", sep=";", dtype=str)["_synthetic"]
        == "SYNTHETIC"
    ).all()
    p = cohort["patients"]
    swedish = p[p["site"] != "boston"]["local_id"]
    assert swedish.map(sites.valid_personnummer).sum() == len(swedish) - 1  # one bad check digit
    assert swedish.str[7].eq("9").all()  # synthetic serial series 900-999


def test_calibration_near_published(cohort, published):
    """OS/PFS medians, 5-year OS, log-rank and 1:1 matching land near the publication."""
    from lifelines import KaplanMeierFitter
    from lifelines.statistics import logrank_test

    from pannet.matching import fit_propensity, match_nearest

    a = cohort["analysis"]
    pub_os = published["overall_survival"]["before_matching"]
    pub_pfs = published["progression_free_survival"]["before_matching"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for g in ("SG", "non-SG"):
            m = a["group"] == g
            km = KaplanMeierFitter().fit(a.loc[m, "os_years"], a.loc[m, "os_event"])
            assert abs(km.median_survival_time_ - pub_os[g]["median"]) < 0.8, g
            s5 = float(km.survival_function_at_times(5).iloc[0]) * 100
            assert abs(s5 - pub_os[g]["surv_5y"]) < 5, g
            kp = KaplanMeierFitter().fit(a.loc[m, "pfs_years"], a.loc[m, "pfs_event"])
            assert abs(kp.median_survival_time_ - pub_pfs[g]["median"]) < 0.3, g
    x, y = a[a["treated"] == 1], a[a["treated"] == 0]
    assert logrank_test(x["os_years"], y["os_years"], x["os_event"], y["os_event"]).p_value < 0.05
    pm = fit_propensity(a, "treated", list(cdm.TABLE1_LEVELS))
    pairs = match_nearest(
        pm.logit.to_numpy(), a["treated"].to_numpy(), caliper=0.2, order="largest"
    )
    assert 45 <= len(pairs) <= 55
    # the benefit persists after matching (published: log-rank p = 0.043)
    m = a.loc[np.r_[pairs["treated_index"], pairs["control_index"]]]
    x, y = m[m["treated"] == 1], m[m["treated"] == 0]
    assert logrank_test(x["os_years"], y["os_years"], x["os_event"], y["os_event"]).p_value < 0.05


def test_liver_directed_therapy_more_common_in_sg(cohort):
    a, t = cohort["analysis"], cohort["treatments"]
    for kind in ("liver_resection", "thermal_ablation"):
        ids = set(t.loc[t["treatment"] == kind, "local_id"])
        share = a.assign(x=a["local_id"].isin(ids)).groupby("group")["x"].mean()
        assert share["SG"] > share["non-SG"], kind


def test_any_size_same_structure(tmp_path, root):
    n = 1466
    truth = generate(tmp_path, n_patients=n, seed=7)
    patients, treatments, issues = read_cdm(root, tmp_path)
    assert len(patients) == n
    doc = yaml.safe_load((tmp_path / "defects.yaml").read_text())
    assert doc["expected"]["included"] == round(194 * n / PARAMETERS["published_rows"])
    assert len(issues) == sum(d["caught_by"] == "validate_raw" for d in doc["defects"])
    merged, tr = merge_referrals(patients, treatments)
    a = analysis_frame(merged, tr)
    assert len(a) == doc["expected"]["included"]
    assert (a["group"] == "SG").sum() == doc["expected"]["SG"] == 130
    assert len(truth.referrals) == 2


def test_too_small_cohort_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 100"):
        generate(tmp_path, n_patients=50)
