"""The analysis dataset: time zero, OS, PFS (change of therapy), Table 1/2 fields."""

from __future__ import annotations

import pandas as pd
import pytest
from test_cohort import patients, treatments

from pannet import cdm
from pannet.derive import derive_analysis

CFG = {"days_per_year": 365.25, "pfs_grace_days": 90, "mortality_days": 90}


@pytest.fixture
def data():
    p = patients(
        "a",
        [
            # SG: resected 2006-01-01, died 2006-03-01 (59 days: 90-day death)
            {
                "patient_key": "b-sg",
                "diagnosis_date": "2005-01-01",
                "metastasis_date": "2005-06-01",
                "primary_resection_date": "2006-01-01",
                "resection_type": "whipple_not_a_code",
                "clavien_dindo": 3,
                "death_date": "2006-03-01",
                "last_followup_date": "2006-03-01",
                "age_at_diagnosis_days": 18262,
                "primary_size_cm": 5.0,
                "liver_metastases_count": 10,
                "charlson_index": 4,
                "extra_abdominal_metastases": True,
            },
            # non-SG: metastasis 2010-01-01, alive, follow-up to 2015-01-01
            {
                "patient_key": "a-non",
                "diagnosis_date": "2009-01-01",
                "metastasis_date": "2010-01-01",
                "last_followup_date": "2015-01-01",
                "age_at_diagnosis_days": 10000,
                "primary_size_cm": None,
                "liver_metastases_count": None,
                "charlson_index": 2,
                "clavien_dindo": 1,
            },
        ],
    )
    t = treatments(
        "a",
        [
            # within the grace window (90 days after 2010-01-01 is 2010-04-01): initial plan
            {
                "patient_key": "a-non",
                "treatment": "chemotherapy",
                "line": 1,
                "start_date": "2010-04-01",
            },
            # first change of therapy: progression at 2011-06-01
            {
                "patient_key": "a-non",
                "treatment": "chemotherapy",
                "line": 2,
                "start_date": "2011-06-01",
            },
            {"patient_key": "a-non", "treatment": "thermal_ablation", "start_date": "2012-01-01"},
            {"patient_key": "a-non", "treatment": "prrt", "start_date": "2009-06-01"},
            {"patient_key": "b-sg", "treatment": "liver_resection", "start_date": "2006-02-01"},
        ],
    )
    return p, t


def test_columns_and_dtypes_are_exactly_the_contract(data):
    out = derive_analysis(*data, CFG)
    assert list(out.columns) == list(cdm.ANALYSIS_COLUMNS)
    for col, (dtype, _) in cdm.ANALYSIS_COLUMNS.items():
        assert str(out[col].dtype) == dtype, col
    assert list(out["patient_key"]) == ["a-non", "b-sg"]  # sorted: deterministic bytes


def test_time_zero_survival_and_pfs(data):
    out = derive_analysis(*data, CFG).set_index("patient_key")
    non, sg = out.loc["a-non"], out.loc["b-sg"]
    assert (sg["group"], sg["treated"], non["group"], non["treated"]) == ("SG", 1, "non-SG", 0)
    assert sg["time_zero"] == pd.Timestamp("2006-01-01")
    assert non["time_zero"] == pd.Timestamp("2010-01-01")
    # OS: SG 59 days to death; non-SG censored 1826 days after metastasis
    assert sg["os_years"] == pytest.approx(59 / 365.25) and sg["os_event"] == 1
    assert non["os_years"] == pytest.approx(1826 / 365.25) and non["os_event"] == 0
    # naive OS from the metastasis date: SG 2005-06-01 -> 2006-03-01 = 273 days
    assert sg["naive_os_years"] == pytest.approx(273 / 365.25)
    # PFS non-SG: the 2010-04-01 line is inside the window (90 days, not more than 90),
    # so progression = 2011-06-01 (516 days)
    assert non["pfs_years"] == pytest.approx(516 / 365.25) and non["pfs_event"] == 1
    # PFS SG: liver resection at day 31 is inside the window; death at day 59 = event
    assert sg["pfs_years"] == pytest.approx(59 / 365.25) and sg["pfs_event"] == 1
    # age at time zero = age at diagnosis + diagnosis -> time zero
    assert sg["age_years"] == pytest.approx((18262 + 365) / 365.25)
    assert non["age_years"] == pytest.approx((10000 + 365) / 365.25)


def test_grace_window_is_configurable(data):
    out = derive_analysis(*data, {**CFG, "pfs_grace_days": 89}).set_index("patient_key")
    assert out.loc["a-non", "pfs_years"] == pytest.approx(90 / 365.25)


def test_pfs_censored_without_change_or_death(data):
    p, t = data
    t = t[t["start_date"] < pd.Timestamp("2011-01-01")]
    out = derive_analysis(p, t, CFG).set_index("patient_key")
    assert out.loc["a-non", "pfs_event"] == 0
    assert out.loc["a-non", "pfs_years"] == out.loc["a-non", "os_years"]


def test_table1_and_table2_fields(data):
    out = derive_analysis(*data, CFG).set_index("patient_key")
    sg, non = out.loc["b-sg"], out.loc["a-non"]
    assert (sg["age_group"], non["age_group"]) == ("50-59", "<50")
    assert (sg["calendar_period"], non["calendar_period"]) == ("2000-2009", "2010-2019")
    assert (sg["charlson_group"], non["charlson_group"]) == (">=4", "2-3")
    assert (sg["primary_size_cm"], non["primary_size_cm"]) == ("2-5", "N/A")
    assert (sg["liver_metastases_count"], non["liver_metastases_count"]) == (">=10", "N/A")
    assert (sg["extra_abdominal_metastases"], non["extra_abdominal_metastases"]) == ("Yes", "No")
    assert (
        non["first_line_chemotherapy"],
        non["second_line_chemotherapy"],
        non["third_line_chemotherapy"],
    ) == (1, 1, 0)
    assert (non["prrt_177lu"], non["thermal_hepatic_ablation"], non["liver_resection"]) == (1, 1, 0)
    assert (sg["liver_resection"], sg["liver_directed_therapy"], non["liver_directed_therapy"]) == (
        1,
        1,
        1,
    )
    assert (sg["death_90d"], non["death_90d"]) == (1, 0)
    assert sg["clavien_dindo"] == 3 and pd.isna(non["clavien_dindo"])
    assert pd.isna(non["resection_type"])
