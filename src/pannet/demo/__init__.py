"""The synthetic three-site demo cohort (SYNTHETIC DATA: no real patients).

``python -m pannet.demo --patients N --out DIR [--seed S]`` writes, under ``DIR``:

- ``uppsala/patienter.csv``, ``uppsala/behandlingar.csv`` (semicolon CSV, decimal comma),
- ``gothenburg/sahlgrenska_pannet.xlsx`` (sheets Patienter, Behandlingar, _synthetic),
- ``boston/PANNET_DATA_RAW.csv`` + ``boston/PANNET_DataDictionary.csv`` (REDCap),
- ``defects.yaml`` (every planted defect, machine-readable), ``README.md`` (the model, its
  parameters, the defects), and a ``README.md`` in each site folder.

The same seed and size give the same bytes. The model is in :mod:`pannet.demo.model`, the
site formats in :mod:`pannet.demo.writers`; the site dictionaries that read these files
back are ``config/sites/<site>.yaml``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pannet.demo.model import DEFAULT_PATIENTS, DEFAULT_SEED, PARAMETERS, Truth, simulate

__all__ = ["DEFAULT_PATIENTS", "DEFAULT_SEED", "PARAMETERS", "Truth", "generate", "simulate"]

SITE_FILES = {
    "uppsala": ("patienter.csv", "behandlingar.csv"),
    "gothenburg": ("sahlgrenska_pannet.xlsx",),
    "boston": ("PANNET_DATA_RAW.csv", "PANNET_DataDictionary.csv"),
}
PATIENT_FILE = {
    "uppsala": "uppsala/patienter.csv",
    "gothenburg": "gothenburg/sahlgrenska_pannet.xlsx",
    "boston": "boston/PANNET_DATA_RAW.csv",
}

# The planted defects: kind -> (site, raw column, rule that catches it, stage, description)
DEFECT_KINDS = {
    "misspelt_code": (
        "gothenburg",
        "Hormonell funktion",
        "code_list",
        "validate_raw",
        "hormonal function written 'Icke-funktionel' (misspelt; the code list has "
        "'Icke-funktionell')",
    ),
    "death_before_diagnosis": (
        "uppsala",
        "dodsdatum",
        "death_after_diagnosis",
        "validate_cdm",
        "date of death typed ten years too early: before the date of diagnosis",
    ),
    "missing_mandatory": (
        "boston",
        "dx_date",
        "required",
        "validate_raw",
        "date of diagnosis (mandatory) left empty",
    ),
    "bad_check_digit": (
        "uppsala",
        "personnummer",
        "identifier",
        "validate_raw",
        "personnummer with a wrong check digit (last digit off by one)",
    ),
}


def _plan_records(truth: Truth, rng) -> pd.DataFrame:
    """One row per raw patient record: the persons plus the referrals' Uppsala copies."""
    p = truth.persons.copy()
    p["person"] = np.arange(len(p))
    p["record_kind"] = "primary"
    p["referral_date"] = pd.Series(pd.NaT, index=p.index, dtype="datetime64[ns]")
    ref_pos = np.flatnonzero(p["referred_from_uppsala"].to_numpy())
    rec = p.iloc[np.r_[np.arange(len(p)), ref_pos]].reset_index(drop=True)
    copy = np.arange(len(rec)) >= len(p)
    t0 = rec.loc[copy, "time_zero"].to_numpy(dtype="datetime64[D]")
    mets = rec.loc[copy, "metastasis_date"].to_numpy(dtype="datetime64[D]")
    referral = np.minimum(mets + (t0 - mets) // 2, t0 - np.timedelta64(1, "D"))
    rec.loc[copy, "site"] = "uppsala"
    rec.loc[copy, "record_kind"] = "referral_copy"
    rec.loc[copy, "clavien_dindo"] = -1
    rec.loc[copy, ["primary_resection_date", "death_date"]] = pd.NaT
    rec.loc[copy, "resection_type"] = None
    rec.loc[copy, "last_followup_date"] = pd.to_datetime(referral)
    rec.loc[copy, "referral_date"] = pd.to_datetime(referral)
    # the order of the rows in each export: a permutation per site
    rec["order"] = 0
    for site in ("uppsala", "gothenburg", "boston"):
        m = np.flatnonzero(rec["site"].to_numpy() == site)
        rec.loc[m, "order"] = rng.permutation(m.size) + 1
    rec["record_id"] = np.where(rec["site"].eq("boston"), rec["order"], 0)
    return rec


def _plan_treatments(truth: Truth, rec: pd.DataFrame) -> pd.DataFrame:
    tr = truth.treatments.copy()
    rec_of_person = pd.Series(
        rec.index[rec["record_kind"].eq("primary")],
        index=rec.loc[rec["record_kind"].eq("primary"), "person"],
    )
    tr["record"] = rec_of_person.reindex(tr["person"]).to_numpy()
    extra = []
    for ri, r in rec[rec["record_kind"].eq("referral_copy")].iterrows():
        # started at the referring hospital on the day of referral, ongoing when it ends
        extra.append(
            {
                "person": r["person"],
                "treatment": "somatostatin_analogue",
                "line": -1,
                "start_date": r["referral_date"],
                "end_date": pd.NaT,
                "record": ri,
            }
        )
    if extra:
        tr = pd.concat([tr, pd.DataFrame(extra)], ignore_index=True)
    tr["site"] = rec["site"].to_numpy()[tr["record"].to_numpy()]
    tr["local_id"] = rec["local_id"].to_numpy()[tr["record"].to_numpy()]
    tr["record_id"] = rec["record_id"].to_numpy()[tr["record"].to_numpy()]
    tr["order"] = rec["order"].to_numpy()[tr["record"].to_numpy()]
    tr["start_date"] = pd.to_datetime(tr["start_date"])
    tr["end_date"] = pd.to_datetime(tr["end_date"])
    return tr.sort_values(
        ["site", "order", "start_date", "treatment"], kind="stable", ignore_index=True
    )


def _choose_defects(rec: pd.DataFrame, n_each: int, rng) -> list[dict]:
    """Pick the records that carry a defect: ineligible, no metastases, no treatments."""
    out = []
    used: set[int] = set()
    for kind, (site, column, rule, stage, desc) in DEFECT_KINDS.items():
        pool = rec.index[
            rec["site"].eq(site)
            & rec["reason"].eq("no_distant_metastases")
            & rec["record_kind"].eq("primary")
        ]
        if kind == "misspelt_code":
            pool = pool[rec.loc[pool, "hormonal_function"].eq("Non-functioning").to_numpy()]
        if kind == "death_before_diagnosis":
            pool = pool[rec.loc[pool, "death_date"].notna().to_numpy()]
        pool = np.array([i for i in pool if i not in used])
        chosen = np.sort(rng.choice(pool, n_each, replace=False))
        for k, ri in enumerate(chosen):
            used.add(int(ri))
            out.append(
                {
                    "kind": kind,
                    "record": int(ri),
                    "site": site,
                    "column": column,
                    "rule": rule,
                    "stage": stage,
                    "description": desc,
                    "k": k,
                }
            )
    return out


def _apply_defect(d: dict, rec: pd.DataFrame) -> str:
    r = rec.loc[d["record"]]
    if d["kind"] == "misspelt_code":
        return "Icke-funktionel"
    if d["kind"] == "death_before_diagnosis":
        death = pd.Timestamp(r["death_date"])
        wrong = death - pd.DateOffset(years=10)
        if wrong >= pd.Timestamp(r["diagnosis_date"]):
            wrong = pd.Timestamp(r["diagnosis_date"]) - pd.Timedelta(days=400)
        return wrong.strftime("%Y-%m-%d")
    if d["kind"] == "missing_mandatory":
        return ""
    pnr = r["local_id"]
    return pnr[:-1] + str((int(pnr[-1]) + 1) % 10)


def generate(
    out_dir: str | Path,
    n_patients: int = DEFAULT_PATIENTS,
    seed: int = DEFAULT_SEED,
    readme: bool = True,
) -> Truth:
    """Generate the cohort and write the three site exports under ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Output folder (``resources/demo`` for the committed demo).
    n_patients : int
        Raw patient rows over the three exports (733 = the published study).
    seed : int
        Master seed.
    readme : bool
        Also write ``README.md`` files and ``defects.yaml``.

    Returns
    -------
    Truth
        The CDM-level truth (``persons`` gains ``site``/``order``; ``records`` and
        ``defects`` are attached) for tests and calibration.
    """
    from pannet.demo import writers

    out = Path(out_dir)
    truth = simulate(n_patients, seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(8)[7])
    rec = _plan_records(truth, rng)
    tr = _plan_treatments(truth, rec)
    n_each = max(1, round(n_patients / PARAMETERS["published_rows"]))
    defects = _choose_defects(rec, n_each, rng)
    for d in defects:
        d["value"] = _apply_defect(d, rec)

    def site_rows(site):
        r = rec[rec["site"].eq(site)].sort_values("order")
        return r, tr[tr["site"].eq(site)]

    # Uppsala
    up, upt = site_rows("uppsala")
    pat, beh = writers.uppsala_tables(up.reset_index(drop=True), upt, rng)
    pos = {ri: k for k, ri in enumerate(up.index)}
    for d in defects:
        if d["site"] == "uppsala":
            pat.loc[pos[d["record"]], d["column"]] = d["value"]
            d["source_row"] = pos[d["record"]] + 1
    files = writers.write_uppsala(pat, beh, out / "uppsala")
    # Gothenburg
    gb, gbt = site_rows("gothenburg")
    header, columns, theader, tcolumns = writers.gothenburg_tables(gb.reset_index(drop=True), gbt)
    pos = {ri: k for k, ri in enumerate(gb.index)}
    for d in defects:
        if d["site"] == "gothenburg":
            columns[header.index(d["column"])][pos[d["record"]]] = d["value"]
            d["source_row"] = pos[d["record"]] + 1
    files += writers.write_gothenburg((header, columns, theader, tcolumns), out / "gothenburg")
    # Boston
    bo, bot = site_rows("boston")
    data = writers.boston_table(bo.reset_index(drop=True), bot)
    main_rows = data.index[data["redcap_repeat_instrument"].eq("")]
    row_of_record = pd.Series(main_rows + 1, index=data.loc[main_rows, "record_id"].astype(int))
    for d in defects:
        if d["site"] == "boston":
            rid = int(rec.loc[d["record"], "record_id"])
            data.loc[row_of_record[rid] - 1, d["column"]] = d["value"]
            d["source_row"] = int(row_of_record[rid])
    files += writers.write_boston(data, writers.boston_dictionary(), out / "boston")

    # source rows of the referral records (both exports)
    referrals = []
    for person in rec.loc[rec["record_kind"].eq("referral_copy"), "person"]:
        both = rec[rec["person"].eq(person)]
        referrals.append(
            {
                "local_id": both["local_id"].iloc[0],
                "records": [
                    {
                        "site": s,
                        "file": PATIENT_FILE[s],
                        "source_row": int(both.loc[both["site"].eq(s), "order"].iloc[0]),
                    }
                    for s in ("uppsala", "gothenburg")
                ],
            }
        )
    truth.records = rec
    truth.record_treatments = tr
    truth.defects = defects
    truth.referrals = referrals
    if readme:
        from pannet.demo.docs import write_docs

        write_docs(out, truth)
    return truth
