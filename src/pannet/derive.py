"""The analysis dataset: one row per included patient, columns :data:`pannet.cdm.ANALYSIS_COLUMNS`.

Definitions (``analysis`` config section; ``dpy`` = ``days_per_year``, 365.25):

- **group**: SG when the primary tumour was resected (``primary_resection_date`` set),
  else non-SG; ``treated`` = 1 for SG.
- **time zero**: SG the primary resection date, non-SG the metastasis date (the
  study's guard against immortal time bias).
- **age_years** at time zero = (``age_at_diagnosis_days`` + days from diagnosis to time
  zero) / dpy.
- **OS**: from time zero to death (event) or last follow-up (censored), days / dpy.
- **PFS**: progression = the first start of any treatment that starts *more than*
  ``pfs_grace_days`` days after time zero (a change of oncological or surgical therapy;
  a treatment started within the window is part of the initial plan), or death,
  whichever is first (event); otherwise censored at last follow-up.
- **naive_os_years**: OS from the metastasis date for everyone (the immortal-time
  contrast).
- Table 1 categories by the binning functions of :mod:`pannet.cdm` (published labels);
  ``extra_abdominal_metastases`` is Yes / No.
- Table 2 indicators = ever received: chemotherapy lines 1/2/3 from ``line``, interferon
  alpha, somatostatin analogue, liver resection, thermal ablation, hepatic artery
  embolization, PRRT; ``liver_directed_therapy`` = liver resection or thermal ablation.
- ``death_90d`` = death within ``mortality_days`` days of time zero (inclusive);
  ``resection_type`` and ``clavien_dindo`` for SG, NA for non-SG.

Rows are sorted by ``patient_key`` so the bytes of the output are deterministic.
"""

from __future__ import annotations

import pandas as pd

from pannet import cdm
from pannet.cohort import is_sg, time_zero

# Table 2 indicator -> (CDM treatment code, chemotherapy line or None)
TABLE2_SOURCES: dict[str, tuple[str, int | None]] = {
    "first_line_chemotherapy": ("chemotherapy", 1),
    "second_line_chemotherapy": ("chemotherapy", 2),
    "third_line_chemotherapy": ("chemotherapy", 3),
    "interferon_alpha": ("interferon_alpha", None),
    "somatostatin_analogue": ("somatostatin_analogue", None),
    "liver_resection": ("liver_resection", None),
    "thermal_hepatic_ablation": ("thermal_ablation", None),
    "hepatic_artery_embolization": ("hepatic_artery_embolization", None),
    "prrt_177lu": ("prrt", None),
}


def progression_date(
    patients: pd.DataFrame, treatments: pd.DataFrame, t0: pd.Series, grace_days: int
) -> pd.Series:
    """First start of a treatment more than ``grace_days`` after time zero, or death."""
    start = pd.Series(t0.to_numpy(), index=patients["patient_key"].to_numpy())
    t = treatments.dropna(subset=["patient_key", "start_date"])
    limit = t["patient_key"].map(start) + pd.Timedelta(days=grace_days)
    later = t[t["start_date"] > limit]
    first_change = later.groupby("patient_key")["start_date"].min()
    change = patients["patient_key"].map(first_change).astype("datetime64[ns]")
    death = patients["death_date"]
    return change.where(death.isna() | (change < death), death).where(change.notna(), death)


def derive_analysis(
    cohort: pd.DataFrame, treatments: pd.DataFrame, analysis_cfg: dict | None = None
) -> pd.DataFrame:
    """Build the analysis dataset from the cohort and its treatments.

    Parameters
    ----------
    cohort : DataFrame
        Included patients, :data:`pannet.cdm.HARMONISED_PATIENT_COLUMNS`.
    treatments : DataFrame
        Their treatments, :data:`pannet.cdm.HARMONISED_TREATMENT_COLUMNS`.
    analysis_cfg : dict, optional
        The ``analysis`` config section (``days_per_year``, ``pfs_grace_days``,
        ``mortality_days``).

    Returns
    -------
    DataFrame
        Exactly :data:`pannet.cdm.ANALYSIS_COLUMNS`, sorted by ``patient_key``.
    """
    cfg = {
        "days_per_year": 365.25,
        "pfs_grace_days": 90,
        "mortality_days": 90,
        **(analysis_cfg or {}),
    }
    dpy = float(cfg["days_per_year"])
    p = cohort.sort_values("patient_key", kind="stable", ignore_index=True)
    sg = is_sg(p)
    t0 = time_zero(p)
    if t0.isna().any():
        r = p[t0.isna()].iloc[0]
        raise ValueError(
            f"patient {r['patient_key']} (site {r['site']}, row {r['source_row']}): no time zero"
        )
    end = p["death_date"].fillna(p["last_followup_date"])
    died = p["death_date"].notna()

    def years(a: pd.Series, b: pd.Series) -> pd.Series:
        return ((b - a).dt.days / dpy).astype("float64")

    prog = progression_date(p, treatments, t0, int(cfg["pfs_grace_days"]))
    pfs_end = prog.where(prog.notna() & (prog <= end), end)
    pfs_event = prog.notna() & (prog <= end)

    out = pd.DataFrame(
        {
            "patient_key": p["patient_key"],
            "site": p["site"],
            "group": sg.map({True: "SG", False: "non-SG"}),
            "treated": sg.astype("int64"),
            "time_zero": t0.astype("datetime64[ns]"),
            "age_years": (
                (p["age_at_diagnosis_days"].astype("float64") + (t0 - p["diagnosis_date"]).dt.days)
                / dpy
            ),
            "os_years": years(t0, end),
            "os_event": died.astype("int64"),
            "pfs_years": years(t0, pfs_end),
            "pfs_event": pfs_event.astype("int64"),
            "naive_os_years": years(p["metastasis_date"], end),
        }
    )
    out["age_group"] = out["age_years"].map(cdm.age_group)
    out["sex"] = p["sex"]
    out["hormonal_function"] = p["hormonal_function"]
    out["calendar_period"] = t0.dt.year.map(cdm.calendar_period)
    out["charlson_group"] = p["charlson_index"].map(cdm.charlson_group, na_action="ignore")
    out["primary_size_cm"] = p["primary_size_cm"].astype("object").map(cdm.primary_size_group)
    out["liver_metastases_count"] = (
        p["liver_metastases_count"].astype("object").map(cdm.liver_metastases_group)
    )
    out["extra_abdominal_metastases"] = p["extra_abdominal_metastases"].map(
        {True: "Yes", False: "No"}
    )
    out["who_grade"] = p["who_grade"]

    for name, (code, line) in TABLE2_SOURCES.items():
        sel = treatments["treatment"] == code
        if line is not None:
            sel &= treatments["line"] == line
        keys = set(treatments.loc[sel.fillna(False).astype(bool), "patient_key"])
        out[name] = p["patient_key"].isin(keys).astype("int64")
    out["liver_directed_therapy"] = (
        out["liver_resection"] | out["thermal_hepatic_ablation"]
    ).astype("int64")
    out["resection_type"] = p["resection_type"].where(sg)
    out["clavien_dindo"] = p["clavien_dindo"].where(sg)
    days_to_death = (p["death_date"] - t0).dt.days
    out["death_90d"] = (died & (days_to_death <= int(cfg["mortality_days"]))).astype("int64")

    for col, (dtype, _) in cdm.ANALYSIS_COLUMNS.items():
        out[col] = out[col].astype(dtype)
    return out[list(cdm.ANALYSIS_COLUMNS)]
