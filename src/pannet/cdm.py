"""The common data model (CDM): the one schema every site is harmonised to.

Names, types and code sets are fixed here, in code, so that every site's dictionary
maps to the same target and every downstream step can rely on it. The analysis dataset
(one row per included patient) is described here too, since matching, survival, the
tables and the report all read it.

Birth dates: a site maps its birth date (or the one encoded in the personnummer) to
``birth_date`` of :data:`PATIENT_COLUMNS`, but it never leaves harmonisation: the written
tables (:data:`HARMONISED_PATIENT_COLUMNS`) carry ``age_at_diagnosis_days`` instead, from
which the age at time zero is computed exactly.
"""

from __future__ import annotations

import math

# ---------------------------------------------------------------------------
# Harmonised patients: results/harmonised/<site>/patients.parquet
# (column -> (pandas dtype, description)). Dates are datetime64[ns] (no time part).
PATIENT_COLUMNS: dict[str, tuple[str, str]] = {
    "patient_key": ("string", "keyed HMAC-SHA-256 pseudonym of the local identifier"),
    "site": ("string", "site id (config/sites/<site>.yaml)"),
    "source_row": ("Int64", "1-based data row number in the site's raw patient file"),
    "sex": ("string", "Female | Male"),
    "birth_date": ("datetime64[ns]", "date of birth"),
    "diagnosis_date": ("datetime64[ns]", "date of pan-NET diagnosis"),
    "metastasis_date": ("datetime64[ns]", "date distant metastatic disease was found; NaT if none"),
    "hereditary_syndrome": ("string", "none | MEN1 | VHL | NF1 | TSC"),
    "who_grade": ("string", "G1 | G2 | G3 | NEC (WHO 2017)"),
    "ki67": ("Float64", "Ki-67 index, percent"),
    "hormonal_function": ("string", "Functioning | Non-functioning"),
    "primary_size_cm": ("Float64", "largest diameter of the primary tumour, cm; NA if unknown"),
    "liver_metastases_count": ("Int64", "number of liver metastases; NA if unknown"),
    "extra_abdominal_metastases": ("boolean", "metastases outside the abdomen"),
    "charlson_index": ("Int64", "Charlson comorbidity index, index cancer excluded"),
    "primary_resection_date": ("datetime64[ns]", "date of primary tumour resection; NaT if none"),
    "resection_type": (
        "string",
        "distal_pancreatectomy | pancreaticoduodenectomy | central_pancreatectomy | "
        "enucleation | total_pancreatectomy; NA if not resected",
    ),
    "clavien_dindo": ("Int64", "worst Clavien-Dindo grade within 90 days of resection (0-5)"),
    "death_date": ("datetime64[ns]", "date of death; NaT if alive at last follow-up"),
    "last_followup_date": ("datetime64[ns]", "date of last follow-up (death date if dead)"),
}

# Harmonised treatments: results/harmonised/<site>/treatments.parquet
TREATMENT_COLUMNS: dict[str, tuple[str, str]] = {
    "patient_key": ("string", "pseudonym, as in patients"),
    "site": ("string", "site id"),
    "source_row": ("Int64", "1-based data row number in the site's raw treatment file"),
    "treatment": ("string", "one of TREATMENT_CODES"),
    "line": ("Int64", "line of systemic chemotherapy (1, 2, 3, ...); NA for other treatments"),
    "start_date": ("datetime64[ns]", "start of the treatment"),
    "end_date": ("datetime64[ns]", "end of the treatment; NaT if ongoing or single event"),
}

# What harmonisation writes (results/harmonised/<site>/{patients,treatments}.parquet).
# PATIENT_COLUMNS is what a site dictionary maps to, in memory; the written table differs
# in one place: no birth date may pass harmonisation (privacy standard), so `birth_date`
# is replaced by `age_at_diagnosis_days`, the whole days from birth to diagnosis. Age at
# any later date is then exact: age_at_diagnosis_days + (date - diagnosis_date).days.
HARMONISED_PATIENT_COLUMNS: dict[str, tuple[str, str]] = {
    k2: v2
    for k, v in PATIENT_COLUMNS.items()
    for k2, v2 in (
        [
            (
                "age_at_diagnosis_days",
                ("Int64", "whole days from birth to diagnosis (no birth date is kept)"),
            )
        ]
        if k == "birth_date"
        else [(k, v)]
    )
}
HARMONISED_TREATMENT_COLUMNS: dict[str, tuple[str, str]] = dict(TREATMENT_COLUMNS)

TREATMENT_CODES = (
    "chemotherapy",
    "interferon_alpha",
    "somatostatin_analogue",
    "prrt",
    "liver_resection",
    "thermal_ablation",
    "hepatic_artery_embolization",
    "targeted_therapy",
    "radiotherapy",
)

SEX_CODES = ("Female", "Male")
GRADE_CODES = ("G1", "G2", "G3", "NEC")
SYNDROME_CODES = ("none", "MEN1", "VHL", "NF1", "TSC")
HORMONAL_CODES = ("Functioning", "Non-functioning")
RESECTION_TYPES = (
    "distal_pancreatectomy",
    "pancreaticoduodenectomy",
    "central_pancreatectomy",
    "enucleation",
    "total_pancreatectomy",
)

# Charlson weights of the conditions a site may report as components (Charlson 1987;
# the index cancer - metastatic solid tumour - is excluded by the study's definition).
CHARLSON_WEIGHTS: dict[str, int] = {
    "myocardial_infarction": 1,
    "congestive_heart_failure": 1,
    "peripheral_vascular_disease": 1,
    "cerebrovascular_disease": 1,
    "dementia": 1,
    "chronic_pulmonary_disease": 1,
    "connective_tissue_disease": 1,
    "peptic_ulcer_disease": 1,
    "mild_liver_disease": 1,
    "diabetes_uncomplicated": 1,
    "hemiplegia": 2,
    "renal_disease": 2,
    "diabetes_end_organ_damage": 2,
    "other_malignancy": 2,
    "leukemia": 2,
    "lymphoma": 2,
    "severe_liver_disease": 3,
    "aids": 6,
}

# ---------------------------------------------------------------------------
# Table 1 categories: the variables and level labels of the publication
# (resources/published/kjaer2022.yaml). Bins are closed on the left.
TABLE1_LEVELS: dict[str, tuple[str, ...]] = {
    "age_group": ("<50", "50-59", "60-69", ">70"),
    "sex": ("Female", "Male"),
    "hormonal_function": ("Functioning", "Non-functioning"),
    "calendar_period": ("2000-2009", "2010-2019"),
    "charlson_group": ("0-1", "2-3", ">=4"),
    "primary_size_cm": ("<2", "2-5", ">5", "N/A"),
    "liver_metastases_count": ("1-3", "4-9", ">=10", "N/A"),
    "extra_abdominal_metastases": ("Yes", "No"),
    "who_grade": ("G1", "G2"),
}

TABLE2_TREATMENTS: tuple[str, ...] = (
    "first_line_chemotherapy",
    "second_line_chemotherapy",
    "third_line_chemotherapy",
    "interferon_alpha",
    "somatostatin_analogue",
    "liver_resection",
    "thermal_hepatic_ablation",
    "hepatic_artery_embolization",
    "prrt_177lu",
)


def _isna(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x) in ("<NA>", "NaT")


def age_group(age_years: float) -> str:
    """Age at time zero -> '<50' | '50-59' | '60-69' | '>70' (the last printed '>70' is >= 70)."""
    if age_years < 50:
        return "<50"
    if age_years < 60:
        return "50-59"
    if age_years < 70:
        return "60-69"
    return ">70"


def calendar_period(year: int) -> str:
    """Year of time zero -> '2000-2009' | '2010-2019'."""
    return "2000-2009" if year < 2010 else "2010-2019"


def charlson_group(index: int) -> str:
    """Charlson index -> '0-1' | '2-3' | '>=4'."""
    if index <= 1:
        return "0-1"
    if index <= 3:
        return "2-3"
    return ">=4"


def primary_size_group(size_cm) -> str:
    """Primary tumour size in cm -> '<2' | '2-5' (2 <= s <= 5) | '>5' | 'N/A'."""
    if _isna(size_cm):
        return "N/A"
    if size_cm < 2:
        return "<2"
    if size_cm <= 5:
        return "2-5"
    return ">5"


def liver_metastases_group(count) -> str:
    """Number of liver metastases -> '1-3' | '4-9' | '>=10' | 'N/A' (unknown or none)."""
    if _isna(count) or count < 1:
        return "N/A"
    if count <= 3:
        return "1-3"
    if count <= 9:
        return "4-9"
    return ">=10"


# ---------------------------------------------------------------------------
# The analysis dataset: results/cohort/analysis.parquet, one row per included patient.
ANALYSIS_COLUMNS: dict[str, tuple[str, str]] = {
    "patient_key": ("string", "pseudonym"),
    "site": ("string", "site id (of the record kept when a referral was merged)"),
    "group": ("string", "SG (primary resected) | non-SG"),
    "treated": ("int64", "1 for SG, 0 for non-SG"),
    "time_zero": ("datetime64[ns]", "SG: primary resection date; non-SG: metastasis date"),
    "age_years": ("float64", "age at time zero, years (days / 365.25)"),
    "os_years": ("float64", "overall survival from time zero, years (days / 365.25)"),
    "os_event": ("int64", "1 death, 0 censored at last follow-up"),
    "pfs_years": ("float64", "progression-free survival from time zero, years"),
    "pfs_event": ("int64", "1 progression (change of therapy) or death, 0 censored"),
    "naive_os_years": (
        "float64",
        "OS from the metastasis date for everyone (immortal-time contrast)",
    ),
    **{k: ("string", f"Table 1 category: {' | '.join(v)}") for k, v in TABLE1_LEVELS.items()},
    **{k: ("int64", "Table 2 indicator: ever received (0/1)") for k in TABLE2_TREATMENTS},
    "liver_directed_therapy": (
        "int64",
        "liver resection or thermal ablation (sensitivity exclusion)",
    ),
    "resection_type": ("string", "as in the CDM; NA for non-SG"),
    "clavien_dindo": ("Int64", "Clavien-Dindo grade for SG; NA for non-SG"),
    "death_90d": ("int64", "death within 90 days of time zero"),
}
