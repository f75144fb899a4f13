"""The study cohort: union of sites, cross-site duplicates, eligibility, attrition, ledger.

Steps, in this order (each is one step of the STROBE flow, by site and in total):

1. **assessed**: every raw patient row of every site.
2. **quarantined**: rows with a row in ``results/quarantine/<site>.parquet`` (rule broken).
3. **merged duplicate**: a patient present at two sites (a referral) has the same
   pseudonym at both. Merge rule: keep the record with the latest ``last_followup_date``
   (a tie: the site listed first in ``config.yaml sites``, then the lower row number);
   fill each of its missing values from the other record; the patient's treatments are
   the union of both sites' treatments, a treatment recorded at both sites (same
   treatment, line and start date) counted once. The other record is a merged duplicate.
4. the eligibility criteria of ``config.yaml eligibility``, in order: distant metastases,
   no hereditary syndrome, allowed WHO grade, time zero within the baseline window.

**Every raw row ends in exactly one place** and the ledger says where: a patient row is
``included``, ``excluded`` (reason = criterion), ``quarantined`` (reason = rule) or
``merged_duplicate`` (reason = the row it was merged into); a treatment row is
``attached`` (to an included patient), ``excluded`` (its patient was excluded),
``quarantined`` (its own rule, or ``patient_quarantined``) or ``merged_duplicate``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pannet import cdm

LEDGER_COLUMNS: dict[str, str] = {
    "site": "string",
    "table": "string",  # patients | treatments
    "source_row": "Int64",
    "patient_key": "string",
    "fate": "string",
    "reason": "string",
}
PATIENT_FATES = ("included", "excluded", "quarantined", "merged_duplicate")
TREATMENT_FATES = ("attached", "excluded", "quarantined", "merged_duplicate")

ATTRITION_COLUMNS: dict[str, str] = {
    "step": "int64",
    "criterion": "string",
    "description": "string",
    "site": "string",  # a site id, or "all"
    "removed": "int64",
    "remaining": "int64",
    "sg": "Int64",  # the included rows only: SG / non-SG split
    "non_sg": "Int64",
}

CRITERIA_TEXT = {
    "assessed": "patients assessed (raw rows of the site exports)",
    "quarantined": "invalid data (a row-level validation rule broken)",
    "merged_duplicate": "same patient at two sites (referral), merged",
    "no_distant_metastases": "no distant metastatic disease",
    "hereditary_syndrome": "hereditary syndrome",
    "grade_not_allowed": "WHO grade not allowed (G3 / NEC / missing)",
    "baseline_outside_window": "time zero outside the baseline window",
    "included": "included",
}


@dataclass
class CohortResult:
    """Output of :func:`build_cohort`."""

    cohort: pd.DataFrame  # harmonised patient columns, one row per included patient
    treatments: pd.DataFrame  # harmonised treatment columns, treatments of included patients
    attrition: pd.DataFrame  # ATTRITION_COLUMNS
    ledger: pd.DataFrame  # LEDGER_COLUMNS, one row per raw patient and treatment row


def is_sg(patients: pd.DataFrame) -> pd.Series:
    """True for the surgery group: the primary tumour was resected."""
    return patients["primary_resection_date"].notna()


def time_zero(patients: pd.DataFrame) -> pd.Series:
    """SG: date of primary resection; non-SG: date of distant metastatic disease."""
    return patients["primary_resection_date"].where(is_sg(patients), patients["metastasis_date"])


def eligibility_masks(patients: pd.DataFrame, criteria: dict) -> list[tuple[str, pd.Series]]:
    """(criterion, mask of the rows it removes), in the order they are applied."""
    out = []
    if criteria.get("require_distant_metastases", True):
        out.append(("no_distant_metastases", patients["metastasis_date"].isna()))
    syndromes = list(criteria.get("excluded_syndromes", []))
    out.append(
        (
            "hereditary_syndrome",
            patients["hereditary_syndrome"].isin(syndromes).fillna(False).astype(bool),
        )
    )
    grades = list(criteria.get("allowed_grades", cdm.GRADE_CODES))
    out.append(
        ("grade_not_allowed", ~patients["who_grade"].isin(grades).fillna(False).astype(bool))
    )
    t0 = time_zero(patients)
    lo = pd.Timestamp(criteria.get("baseline_start", "2000-01-01"))
    hi = pd.Timestamp(criteria.get("baseline_end", "2019-12-31"))
    out.append(("baseline_outside_window", (t0.isna() | (t0 < lo) | (t0 > hi)).astype(bool)))
    return out


def _quarantine_reasons(quarantine: pd.DataFrame, table: str) -> pd.Series:
    q = quarantine[quarantine["table"] == table].sort_values(
        ["source_row", "rule", "column"], kind="stable"
    )
    return q.groupby("source_row")["rule"].agg(lambda s: ",".join(dict.fromkeys(s)))


def merge_duplicates(
    patients: pd.DataFrame, site_order: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Merge records that share a pseudonym (see the module docstring for the rule).

    Returns
    -------
    merged : DataFrame
        One row per patient_key.
    duplicates : DataFrame
        ``site``, ``source_row``, ``patient_key``, ``into_site``, ``into_row`` of every
        record merged into another.
    """
    rank = {s: i for i, s in enumerate(site_order)}
    p = patients.copy()
    p["_site_rank"] = p["site"].map(rank).astype(int)
    p["_fu"] = p["last_followup_date"].fillna(pd.Timestamp.min)
    p = p.sort_values(
        ["patient_key", "_fu", "_site_rank", "source_row"],
        ascending=[True, False, True, True],
        kind="stable",
    )
    first = p.groupby("patient_key", sort=False).head(1)
    dup = p[p.duplicated("patient_key", keep="first")]
    kept = first.set_index("patient_key")
    if len(dup):
        fill = dup.groupby("patient_key").first()  # first non-null per column, in rank order
        cols = [
            c
            for c in cdm.HARMONISED_PATIENT_COLUMNS
            if c not in ("patient_key", "site", "source_row")
        ]
        kept.loc[fill.index, cols] = kept.loc[fill.index, cols].combine_first(fill[cols])
    duplicates = pd.DataFrame(
        {
            "site": dup["site"].to_numpy(),
            "source_row": dup["source_row"].to_numpy(),
            "patient_key": dup["patient_key"].to_numpy(),
            "into_site": kept.loc[dup["patient_key"], "site"].to_numpy(),
            "into_row": kept.loc[dup["patient_key"], "source_row"].to_numpy(),
        }
    )
    merged = kept.reset_index()[list(cdm.HARMONISED_PATIENT_COLUMNS)]
    for col, (dtype, _) in cdm.HARMONISED_PATIENT_COLUMNS.items():
        merged[col] = merged[col].astype(dtype)
    return merged, duplicates


def build_cohort(
    sites: dict[str, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]],
    criteria: dict,
) -> CohortResult:
    """Union of sites -> quarantine -> merged duplicates -> eligibility.

    Parameters
    ----------
    sites : dict
        site id -> (harmonised patients, harmonised treatments, quarantine table), in the
        order of ``config.yaml sites`` (the order decides ties of the merge rule).
    criteria : dict
        The ``eligibility`` config section.
    """
    site_order = list(sites)
    ledger_parts = []
    pats, trts, flow = [], [], []

    def ledger(site, table, df, fate, reason):
        ledger_parts.append(
            pd.DataFrame(
                {
                    "site": site if isinstance(site, str) else df["site"].to_numpy(),
                    "table": table,
                    "source_row": df["source_row"].to_numpy(),
                    "patient_key": df["patient_key"].to_numpy(),
                    "fate": fate,
                    "reason": reason if isinstance(reason, str) else list(reason),
                }
            )
        )

    remaining: dict[str, int] = {}
    for site, (p, t, q) in sites.items():
        flow.append(("assessed", site, 0, len(p)))
        p_q = _quarantine_reasons(q, "patients")
        t_q = _quarantine_reasons(q, "treatments")
        bad_p = p["source_row"].isin(p_q.index)
        ledger(site, "patients", p[bad_p], "quarantined", p.loc[bad_p, "source_row"].map(p_q))
        flow.append(("quarantined", site, int(bad_p.sum()), len(p) - int(bad_p.sum())))
        remaining[site] = len(p) - int(bad_p.sum())
        # A treatment of a quarantined patient row cannot be attributed with confidence.
        bad_keys = set(p.loc[bad_p, "patient_key"].dropna())
        own = t["source_row"].isin(t_q.index)
        via = ~own & t["patient_key"].isin(bad_keys).fillna(False).astype(bool)
        ledger(site, "treatments", t[own], "quarantined", t.loc[own, "source_row"].map(t_q))
        ledger(site, "treatments", t[via], "quarantined", "patient_quarantined")
        pats.append(p[~bad_p])
        trts.append(t[~(own | via)])

    patients = pd.concat(pats, ignore_index=True)
    if patients["patient_key"].isna().any():
        r = patients[patients["patient_key"].isna()].iloc[0]
        raise ValueError(
            f"site '{r['site']}', patients row {r['source_row']}: no patient_key but not "
            "quarantined (the CDM suite's rule 'required' on patient_key should have caught it)"
        )
    treatments = pd.concat(trts, ignore_index=True)
    merged, dups = merge_duplicates(patients, site_order)
    ledger(
        None,
        "patients",
        dups,
        "merged_duplicate",
        [
            f"merged into {s} row {r}"
            for s, r in zip(dups["into_site"], dups["into_row"], strict=True)
        ],
    )
    for site in site_order:
        n = int((dups["site"] == site).sum())
        remaining[site] -= n
        flow.append(("merged_duplicate", site, n, remaining[site]))

    # Treatments: the union over sites; one row per (patient, treatment, line, start).
    treatments = treatments.assign(
        _rank=treatments["site"].map({s: i for i, s in enumerate(site_order)})
    )
    treatments = treatments.sort_values(["patient_key", "_rank", "source_row"], kind="stable")
    same = treatments.duplicated(["patient_key", "treatment", "line", "start_date"], keep="first")
    ledger(
        None,
        "treatments",
        treatments[same],
        "merged_duplicate",
        "same treatment recorded at another site",
    )
    treatments = treatments[~same].drop(columns="_rank")

    keep = pd.Series(True, index=merged.index)
    reason = pd.Series(pd.NA, index=merged.index, dtype="string")
    for criterion, mask in eligibility_masks(merged, criteria):
        hit = keep & mask
        reason[hit] = criterion
        keep &= ~mask
        for site in site_order:
            n = int((hit & (merged["site"] == site)).sum())
            remaining[site] -= n
            flow.append((criterion, site, n, remaining[site]))
    cohort = merged[keep].sort_values("patient_key", kind="stable", ignore_index=True)
    excluded = merged[~keep]
    ledger(None, "patients", cohort, "included", "eligible")
    ledger(None, "patients", excluded, "excluded", reason[~keep])

    included_keys = set(cohort["patient_key"])
    att = treatments["patient_key"].isin(included_keys)
    ledger(None, "treatments", treatments[att], "attached", "patient included")
    excl_reason = pd.Series(reason[~keep].to_numpy(), index=excluded["patient_key"].to_numpy())
    ledger(
        None,
        "treatments",
        treatments[~att],
        "excluded",
        treatments.loc[~att, "patient_key"]
        .map(excl_reason)
        .fillna("patient not included")
        .map(lambda r: f"patient excluded: {r}"),
    )
    cohort_treatments = treatments[att].sort_values(
        ["patient_key", "start_date", "treatment", "site", "source_row"],
        kind="stable",
        ignore_index=True,
    )

    ledger_df = pd.concat(ledger_parts, ignore_index=True)
    for col, dtype in LEDGER_COLUMNS.items():
        ledger_df[col] = ledger_df[col].astype(dtype)
    ledger_df = ledger_df.sort_values(
        ["site", "table", "source_row"], kind="stable", ignore_index=True
    )

    sg = is_sg(cohort)
    attrition = _attrition(flow, site_order, cohort, sg)
    return CohortResult(
        cohort, cohort_treatments[list(cdm.HARMONISED_TREATMENT_COLUMNS)], attrition, ledger_df
    )


def _attrition(flow, site_order, cohort, sg) -> pd.DataFrame:
    steps = list(dict.fromkeys(f[0] for f in flow))
    rows = []
    by = {(f[0], f[1]): f for f in flow}
    for i, step in enumerate([*steps, "included"]):
        tot_removed = tot_remaining = 0
        for site in site_order:
            if step == "included":
                prev = by[(steps[-1], site)]
                removed, rem = 0, prev[3]
                in_site = cohort["site"] == site
                split = (int((sg & in_site).sum()), int((~sg & in_site).sum()))
            else:
                _, _, removed, rem = by[(step, site)]
                split = (pd.NA, pd.NA)
            tot_removed += removed
            tot_remaining += rem
            rows.append((i, step, CRITERIA_TEXT.get(step, step), site, removed, rem, *split))
        split_all = (int(sg.sum()), int((~sg).sum())) if step == "included" else (pd.NA, pd.NA)
        rows.append(
            (i, step, CRITERIA_TEXT.get(step, step), "all", tot_removed, tot_remaining, *split_all)
        )
    df = pd.DataFrame(rows, columns=list(ATTRITION_COLUMNS))
    for col, dtype in ATTRITION_COLUMNS.items():
        df[col] = df[col].astype(dtype)
    return df


def flow_diagram(attrition: pd.DataFrame, path, *, synthetic: bool = False) -> None:
    """Draw the STROBE flow diagram (PNG) from the attrition table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pannet.io import save_figure

    sites = [s for s in dict.fromkeys(attrition["site"]) if s != "all"]
    steps = attrition[attrition["site"] == "all"].sort_values("step")
    n = len(steps)
    # one data unit per step, 0.62 inch each: a two-line box and a small gap
    fig, ax = plt.subplots(figsize=(9, 0.62 * n + 0.7), dpi=120)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, n + 0.3)
    ax.axis("off")

    def per_site(step: str, col: str) -> str:
        sub = attrition[(attrition["criterion"] == step) & (attrition["site"] != "all")].set_index(
            "site"
        )
        return ", ".join(f"{s} {int(sub.loc[s, col])}" for s in sites)

    y = n - 0.2
    for k, r in enumerate(steps.itertuples(index=False)):
        if r.criterion == "assessed":
            text = f"Assessed: n = {r.remaining}\n({per_site('assessed', 'remaining')})"
        elif r.criterion == "included":
            text = (
                f"Included: n = {r.remaining}  (SG {r.sg}, non-SG {r.non_sg})\n"
                f"({per_site('included', 'remaining')})"
            )
        else:
            text = None
        if text is not None:
            ax.text(
                3.2,
                y,
                text,
                ha="center",
                va="top",
                fontsize=9,
                bbox=dict(boxstyle="round", fc="#eef3fb", ec="#335"),
            )
        else:
            ax.text(
                6.1,
                y,
                f"Excluded: {r.description}: n = {r.removed}\n({per_site(r.criterion, 'removed')})",
                ha="left",
                va="top",
                fontsize=8,
                bbox=dict(boxstyle="square", fc="#fbf3ee", ec="#733"),
            )
            ax.plot([3.2, 6.05], [y - 0.3, y - 0.3], color="#733", lw=0.8)
        y -= 1.0 if k < n - 1 else 0
    # one continuous arrow from the first box to the last; exclusions branch off it
    ax.annotate(
        "",
        xy=(3.2, n - 0.2 - (n - 1) + 0.05),
        xytext=(3.2, n - 0.2 - 0.75),
        arrowprops=dict(arrowstyle="->", color="#335"),
    )
    title = "Study flow (STROBE)"
    if synthetic:
        title += " - SYNTHETIC DEMO DATA"
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    save_figure(fig, path, fmt="png", dpi="figure")
    plt.close(fig)


def build_cohort_from_files(
    sites: list[str],
    patients: list[str],
    treatments: list[str],
    quarantine: list[str],
    criteria: dict,
) -> CohortResult:
    """:func:`build_cohort` on the per-site artefacts (paths name the site they belong to)."""
    from pannet.io import read_parquet

    def of(site: str, paths: list[str]) -> str:
        hits = [p for p in map(str, paths) if f"/{site}/" in p or p.endswith(f"/{site}.parquet")]
        if len(hits) != 1:
            raise ValueError(f"site '{site}': expected one input among {paths}, found {hits}")
        return hits[0]

    tables = {
        s: (
            read_parquet(of(s, patients)),
            read_parquet(of(s, treatments)),
            read_parquet(of(s, quarantine)),
        )
        for s in sites
    }
    return build_cohort(tables, criteria)
