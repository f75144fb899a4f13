"""The demo's documentation files: README.md (model, parameters, defects) and defects.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from pannet.demo.model import ADMIN_END, PARAMETERS

SITE_README = """# SYNTHETIC DEMO DATA - {site}

Every file in this folder was written by `python -m pannet.demo` (seed {seed}, {n} patient
rows over three sites). No row describes a real person: names, personnummer and MRNs are
invented (see `../README.md`). Format: {fmt}. Data dictionary: `config/sites/{site}.yaml`.
"""
SITE_FORMATS = {
    "uppsala": "semicolon-separated UTF-8 CSV, Swedish headers and codes, decimal comma, "
    "ISO dates, size in mm; `patienter.csv` + `behandlingar.csv` (one row per treatment)",
    "gothenburg": "Excel workbook, sheets `Patienter`, `Behandlingar`, `_synthetic`; Excel "
    "date cells, size in cm, Charlson comorbidity as component conditions (Ja/Nej)",
    "boston": "REDCap raw export `PANNET_DATA_RAW.csv` (records + repeating instrument "
    "`treatments`) and the REDCap data dictionary `PANNET_DataDictionary.csv`; MM/DD/YYYY "
    "dates, MRNs, checkbox columns `syndrome___k`, `comorb___k`",
}


def defects_document(truth) -> dict:
    """The machine-readable defect list and expected ledger of one generated cohort."""
    from pannet.demo import PATIENT_FILE

    n_ref = len(truth.referrals)
    p = truth.persons
    n_el = int(p["eligible"].sum())
    n_sg = int((p["eligible"] & p["group"].eq("SG")).sum())
    defects = []
    for i, d in enumerate(truth.defects, 1):
        rec = truth.records.loc[d["record"]]
        entry = {
            "id": f"D{i}",
            "kind": d["kind"],
            "site": d["site"],
            "file": PATIENT_FILE[d["site"]],
            "source_row": int(d["source_row"]),
            "column": d["column"],
            "value": d["value"],
            "local_id": str(rec["local_id"]),
            "rule": d["rule"],
            "caught_by": d["stage"],
            "expected_outcome": "quarantine",
            "eligible_otherwise": False,
            "description": d["description"],
        }
        if d["site"] == "gothenburg":
            entry["sheet"] = "Patienter"
        defects.append(entry)
    for j, r in enumerate(truth.referrals, len(defects) + 1):
        defects.append(
            {
                "id": f"D{j}",
                "kind": "referral_duplicate",
                "site": "uppsala+gothenburg",
                "records": r["records"],
                "local_id": r["local_id"],
                "caught_by": "merge_cohort",
                "expected_outcome": "merge",
                "keep": "gothenburg (latest follow-up; has the surgery); union of treatments",
                "eligible_otherwise": True,
                "group_after_merge": "SG",
                "description": "patient referred from Uppsala to Gothenburg for surgery: same "
                "personnummer, consistent birth/diagnosis/tumour fields in both exports; the "
                "Uppsala record ends at the referral (no surgery, an SSA started there), the "
                "Gothenburg record has the resection and the later follow-up",
            }
        )
    n_q = len(truth.defects)
    return {
        "synthetic": True,
        "generator": {"module": "pannet.demo", "patients": truth.n_patients, "seed": truth.seed},
        "expected": {
            "raw_patient_rows": truth.n_patients,
            "persons": len(p),
            "included": n_el,
            "SG": n_sg,
            "non-SG": n_el - n_sg,
            "quarantined": n_q,
            "merged_duplicates": n_ref,
            "excluded": truth.n_patients - n_el - n_q - n_ref,
        },
        "defects": defects,
    }


def _yaml(obj) -> str:
    return yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100)


def write_docs(out: Path, truth) -> None:
    from pannet.demo.writers import write_bytes

    doc = defects_document(truth)
    head = "# SYNTHETIC DEMO DATA: the defects planted by pannet.demo and the expected ledger.\n"
    write_bytes(out / "defects.yaml", (head + _yaml(doc)).encode("utf-8"))
    for site, fmt in SITE_FORMATS.items():
        text = SITE_README.format(site=site, seed=truth.seed, n=truth.n_patients, fmt=fmt)
        write_bytes(out / site / "README.md", text.encode("utf-8"))
    write_bytes(out / "README.md", readme(truth, doc).encode("utf-8"))


def readme(truth, doc) -> str:
    e = doc["expected"]
    rows = []
    for d in doc["defects"]:
        if d["kind"] == "referral_duplicate":
            where = "; ".join(f"{r['file']} row {r['source_row']}" for r in d["records"])
            rows.append(
                f"| {d['id']} | {d['kind']} | {where} | personnummer | "
                f"{d['description']} | merged (keep Gothenburg) |"
            )
        else:
            sheet = f" (sheet {d['sheet']})" if "sheet" in d else ""
            rows.append(
                f"| {d['id']} | {d['kind']} | {d['file']}{sheet} row {d['source_row']} | "
                f"{d['column']} | {d['description']}; written `{d['value']}` | "
                f"quarantine, rule `{d['rule']}` ({d['caught_by']}) |"
            )
    params = _yaml(PARAMETERS)
    return f"""# SYNTHETIC DEMO DATA - the three-site pan-NET demo cohort

**Nothing here is real.** These exports were written by `python -m pannet.demo --patients
{truth.n_patients} --out resources/demo --seed {truth.seed}` (this file too: do not edit it by
hand; change `pannet.demo` and regenerate). Names are drawn from a short list of obviously
invented names (Exempelsson, Testberg, Placeholder, Fakeley...). Personnummer are built from the
synthetic birth date with serial numbers 900-999 (last serial digit odd for men, even for
women) and a valid Luhn check digit; they are not checked against any register and must not be
used as anyone's identity. MRNs are `BWH` + 7 random digits. Any result made from these files
is a demonstration of the pipeline, not evidence about pan-NET surgery.

What it is: a cohort shaped like Kjaer et al. 2022 (Ann Surg Open 3:e151) - the same
eligibility flow, Table 1 before matching equal to the publication at every level, the same
surgical outcomes, and survival/progression/treatment drawn from a documented model calibrated
to land near the published figures. What it is not: the study's data, or a model of how
pan-NET patients really fare; correlations the paper does not report are invented.

## Files

| site | files | format |
|---|---|---|
| uppsala | `uppsala/patienter.csv`, `uppsala/behandlingar.csv` | {SITE_FORMATS["uppsala"]} |
| gothenburg | `gothenburg/sahlgrenska_pannet.xlsx` | {SITE_FORMATS["gothenburg"]} |
| boston | `boston/PANNET_DATA_RAW.csv`, `boston/PANNET_DataDictionary.csv` | {SITE_FORMATS["boston"]} |

Each site is read through its data dictionary `config/sites/<site>.yaml` (`pannet.sites`).
Synthetic markers: this README and one per site folder, a `_synthetic` column in the Uppsala
CSVs, a `_synthetic` sheet and document title in the workbook, a descriptive field
`synthetic_notice` in the REDCap data dictionary. `defects.yaml` lists every defect and the
expected ledger, machine-readable. Regenerating with the same seed gives identical bytes (the
workbook's document times and zip entry times are fixed at 2022-01-01).

## Expected flow (ledger)

{e["raw_patient_rows"]} raw patient rows ({e["persons"]} persons; {e["merged_duplicates"]}
referral(s) appear in two exports) = **{e["included"]} included** ({e["SG"]} SG, {e["non-SG"]}
non-SG) + {e["excluded"]} excluded by an eligibility criterion + {e["quarantined"]} quarantined
(the defects below) + {e["merged_duplicates"]} merged duplicate(s). Every defect sits on a
patient without distant metastases, so quarantining it does not change the {e["included"]}.

## Defects

| id | kind | where | column | what is wrong | expected outcome |
|---|---|---|---|---|---|
{chr(10).join(rows)}

## Generative model

Definitions the derivation applies (and the generator is consistent with): time zero = primary
resection date (SG) or date of distant metastases (non-SG); eligible = distant metastases,
no MEN1/VHL/NF1/TSC, grade G1/G2, time zero in 2000-01-01..2019-12-31; progression = start of
the first treatment more than {PARAMETERS["pfs"]["grace_days"]} days after time zero (treatments
in [time zero, time zero + {PARAMETERS["pfs"]["grace_days"]} d] are the initial plan) or death,
censored at last follow-up; years = days / 365.25; administrative end of follow-up {ADMIN_END}.

1. **Flow.** `round(194 N / 733)` eligible persons, `round(65 N / 733)` resected (SG); one
   referral (Uppsala -> Gothenburg) per 733 rows; the remaining persons are ineligible for
   exactly one reason (shares below). Sites get 40 / 29 / 31 % of the rows.
2. **Table 1.** For each group and variable the published counts before matching (read from
   `resources/published/kjaer2022.yaml`) are apportioned to the group size (largest remainder;
   exact at N = 733) and dealt out at random, independently per variable. Values inside a level:
   age uniform within the age band (margin 0.03 y), time zero uniform within the calendar
   period, size in whole mm uniform within the band (2-5 cm includes 20 and 50 mm), liver
   metastases 1-3 / 4-9 uniform, >= 10 as 10 + a truncated exponential, N/A = unknown
   (half of them written as 0 = no liver metastases, which the binning also maps to N/A),
   Charlson index 0/1, 2/3, 4-6 inside its group (Gothenburg and Boston write it as component
   conditions whose weights sum to the index).
3. **Dates.** SG: diagnosis 14-119 days before surgery, metastases found between diagnosis
   and surgery. Non-SG: metastases at diagnosis (70 %) or 60-1800 days later.
4. **Surgery (SG).** Resection types and Clavien-Dindo grades dealt from the published counts
   (48/15/1/1; grades 0:30, 1:16, 2:5, 3:8, 4:3, 5:3, so >= 2: 19 and >= 3: 14); the three
   grade-5 patients die 8-84 days after surgery (the 3 deaths within 90 days).
5. **Overall survival.** Weibull proportional hazards `S(t|x) = exp(-(t/scale_g)^shape
   exp(x'beta))`, with x'beta centred over the eligible; the resection effect is the group
   scale. Uniforms are stratified within each group (one per 1/n slice) so the realised
   curves follow the model closely. Censoring: the administrative end and exponential loss to
   follow-up.
6. **Progression and treatments.** Time to the first change of therapy = grace + 1 day + a
   Weibull time; each patient is given a set of treatments ever planned (per-group
   probabilities; chemotherapy lines nested), some in the initial plan (day 0 for
   synchronous liver resection / ablation in SG, else day 0-90), the others in a noisy
   clinical order starting at the progression date with Weibull gaps, none after death or last
   follow-up; a patient who progresses with nothing left planned starts targeted therapy.
   Liver-directed therapy is more common in SG, as published.
7. **Ineligible persons** draw the Table 1 levels from the pooled margins and follow the same
   model (no-metastasis patients: no treatments, longer survival; G3/NEC: shorter).

Calibration targets (published, before matching): median OS 7.8 vs 5.0 years, 5-year OS 67 vs
52 %, median PFS 1.4 vs 1.6 years, log-rank p < 0.05; 1:1 PS matching (logit, caliper 0.2 SD,
largest first) about 50 pairs. `tests/test_demo.py` checks the default cohort against these.

### Parameters

```yaml
{params}```
"""
