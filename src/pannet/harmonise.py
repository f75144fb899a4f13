"""Harmonisation of one site: raw export -> pseudonymised common data model (CDM).

:func:`harmonise_site` reads the export (:func:`pannet.sites.read_raw`), maps it to the
CDM (:func:`pannet.sites.to_cdm`), replaces the local identifier by its keyed pseudonym
(:mod:`pannet.pseudonym`) and replaces the birth date by ``age_at_diagnosis_days``, so the
tables written (:data:`pannet.cdm.HARMONISED_PATIENT_COLUMNS`,
:data:`pannet.cdm.HARMONISED_TREATMENT_COLUMNS`) hold no personnummer, MRN, name or birth
date. Values of identifier, key, name and birth-date columns in the issue rows are
redacted for the same reason. Bad values are NA plus an issue row; nothing is dropped
here: which rows go to quarantine is decided by validate_cdm.
"""

from __future__ import annotations

import pandas as pd

from pannet import cdm
from pannet.pseudonym import pseudonymise
from pannet.validation import QUARANTINE_COLUMNS, REDACTED


def personal_raw_columns(dictionary: dict) -> set[str]:
    """Raw columns whose values must never be copied into an artefact."""
    cols = {
        dictionary["identifier"]["column"],
        dictionary["patients"]["key"],
        dictionary["treatments"]["key"],
        *dictionary.get("personal_columns", []),
    }
    birth = dictionary["patients"]["columns"].get("birth_date", {})
    if "source" in birth:
        cols.add(birth["source"])
    return cols


def age_at_diagnosis_days(birth_date: pd.Series, diagnosis_date: pd.Series) -> pd.Series:
    """Whole days from birth to diagnosis (``Int64``; NA when either date is missing)."""
    return (diagnosis_date - birth_date).dt.days.astype("Int64")


def personnummer_birth_dates(local_id: pd.Series, diagnosis_date: pd.Series) -> pd.Series:
    """Birth dates of 10-digit personnummer, the century fixed by the diagnosis date.

    ``YYMMDD-NNNC`` names the century only through its separator (``+`` from the year the
    person turns 100), which depends on when the number was written, unknown for an
    export. The birth date is the latest date with these YYMMDD not after the diagnosis
    date (nobody is diagnosed before birth nor, plausibly, past 100); without a
    diagnosis date, the separator rule as of today decides
    (:func:`pannet.sites.personnummer_birth_date`).
    """
    from datetime import date

    from pannet.sites import personnummer_birth_date

    out = []
    for pnr, dx in zip(local_id.tolist(), diagnosis_date.tolist(), strict=True):
        fallback = personnummer_birth_date(pnr) if isinstance(pnr, str) else None
        if fallback is None or pd.isna(dx):
            out.append(fallback)
            continue
        yy, mm, dd = fallback.year % 100, fallback.month, fallback.day
        year = dx.year - (dx.year - yy) % 100
        try:
            born = date(year, mm, dd)
            if born > dx.date():
                born = date(year - 100, mm, dd)
        except ValueError:  # 29 February in a year that has none
            born = fallback
        out.append(born)
    return pd.to_datetime(pd.Series(out, index=local_id.index, dtype=object)).astype(
        "datetime64[ns]"
    )


def harmonise_tables(
    site_id: str,
    patients: pd.DataFrame,
    treatments: pd.DataFrame,
    *,
    kind: str,
    key: bytes,
    birth_from_personnummer: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pseudonymise CDM tables that still carry ``local_id`` and ``birth_date``.

    Parameters
    ----------
    site_id : str
    patients, treatments : DataFrame
        :func:`pannet.sites.to_cdm` output (``local_id`` column, CDM columns).
    kind : {"personnummer", "mrn"}
        The identifier kind (site dictionary ``identifier.kind``).
    key : bytes
        The pseudonymisation key (:func:`pannet.pseudonym.resolve_key`).
    birth_from_personnummer : bool
        The birth date is the one the personnummer encodes: its century is taken from
        the diagnosis date (:func:`personnummer_birth_dates`).

    Returns
    -------
    patients, treatments : DataFrame
        Exactly the harmonised CDM columns, sorted by ``source_row``.
    """
    p = patients.copy()
    t = treatments.copy()
    p["patient_key"] = pseudonymise(p["local_id"], kind=kind, site=site_id, key=key)
    t["patient_key"] = pseudonymise(t["local_id"], kind=kind, site=site_id, key=key)
    if birth_from_personnummer:
        p["birth_date"] = personnummer_birth_dates(p["local_id"], p["diagnosis_date"])
    p["age_at_diagnosis_days"] = age_at_diagnosis_days(p["birth_date"], p["diagnosis_date"])
    p = _conform(p, cdm.HARMONISED_PATIENT_COLUMNS)
    t = _conform(t, cdm.HARMONISED_TREATMENT_COLUMNS)
    return p, t


def _conform(df: pd.DataFrame, schema: dict[str, tuple[str, str]]) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for col, (dtype, _) in schema.items():
        out[col] = (
            df[col].astype(dtype) if col in df else pd.Series(pd.NA, index=df.index).astype(dtype)
        )
    return out.sort_values("source_row", kind="stable", ignore_index=True)


def issues_table(issues: pd.DataFrame, dictionary: dict) -> pd.DataFrame:
    """:func:`pannet.sites.to_cdm` issues as quarantine rows, personal values redacted."""
    personal = personal_raw_columns(dictionary)
    q = issues.copy()
    # The CDM column says the table (an xlsx workbook or a REDCap export holds both tables
    # in one file, so neither file nor row number does); local_id issues are the patient
    # identifier's, except a treatment naming no known patient.
    treatment_only = set(cdm.TREATMENT_COLUMNS) - set(cdm.PATIENT_COLUMNS)
    is_t = q["cdm_column"].isin(treatment_only) | (q["rule"] == "unknown_patient")
    q["table"] = is_t.map({True: "treatments", False: "patients"})
    redact = q["column"].isin(personal) | q["cdm_column"].isin(["local_id", "birth_date"])
    q["value"] = q["value"].astype("string").mask(redact, REDACTED)
    q["stage"] = "harmonise"
    for col, dtype in QUARANTINE_COLUMNS.items():
        q[col] = q[col].astype(dtype)
    return q[list(QUARANTINE_COLUMNS)].reset_index(drop=True)


def harmonise_site(
    site_id: str,
    site_cfg: dict,
    dictionary: dict,
    *,
    key: bytes,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read, map and pseudonymise one site's export.

    Returns
    -------
    patients, treatments : DataFrame
        The harmonised CDM tables (every raw row, bad values NA).
    issues : DataFrame
        :data:`pannet.validation.QUARANTINE_COLUMNS` rows from the mapping, redacted.

    Raises
    ------
    pannet.sites.StructuralError
        The export cannot be read as its dictionary says.
    """
    from pannet.sites import read_raw, to_cdm

    raw = read_raw(site_id, site_cfg, dictionary)
    patients, treatments, issues = to_cdm(site_id, raw, dictionary)
    birth = dictionary["patients"]["columns"].get("birth_date", {})
    p, t = harmonise_tables(
        site_id,
        patients,
        treatments,
        kind=dictionary["identifier"]["kind"],
        key=key,
        birth_from_personnummer=birth.get("derive") == "personnummer_birth_date",
    )
    return p, t, issues_table(issues, dictionary)
