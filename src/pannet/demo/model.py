"""The generative model of the synthetic cohort: one CDM-level truth frame, then the exports.

Every person is drawn at the level of the common data model (dates, codes, SI units); the
site writers (:mod:`pannet.demo.writers`) then render each site's rows in that site's own
format. The model, its parameters and why they have the values they have are documented
in ``resources/demo/README.md`` (written from :data:`PARAMETERS` by the generator).

Structure (``N`` raw patient rows, default 733):

1. ``round(194 N / 733)`` eligible persons, ``round(65 N / 733)`` of them resected (SG). For
   each group and Table 1 variable the published level counts (kjaer2022.yaml, before
   matching) are apportioned to the group size (exact at N = 733) and dealt out at random,
   independently per variable (the published margins alone give the propensity score
   the overlap that leaves about 50 matched pairs).
2. The rest are ineligible for exactly one reason: no distant metastases, a hereditary
   syndrome, grade G3/NEC, or a time zero outside 2000-2019.
3. Survival: Weibull proportional hazards, ``S(t | x) = exp(-(t / scale_g)^shape
   * exp(x'beta))``; the resection effect is the group scale. Progression (change of
   therapy): ``grace + Weibull`` from time zero. Censoring: administrative end
   2021-12-31 and exponential loss to follow-up.
4. Treatments: an initial plan inside ``[time zero, time zero + 90 d]``, the first change of
   therapy at the progression date, later changes at Weibull gaps, drawn from per-group
   probabilities of ever receiving each Table 2 treatment.
5. One SG person per 733 rows is referred from Uppsala to Gothenburg and appears in both
   exports; defects are planted on ineligible persons (see :mod:`pannet.demo.defects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pannet import cdm

DEFAULT_SEED = 20220151
DEFAULT_PATIENTS = 733
ADMIN_END = np.datetime64("2021-12-31")
YEAR = 365.25

# Every number of the model, written into resources/demo/README.md by the generator.
PARAMETERS: dict = {
    "published_rows": 733,
    "published_eligible": 194,
    "published_sg": 65,
    "site_row_shares": {"uppsala": 0.40, "gothenburg": 0.29, "boston": 0.31},
    "ineligible_reason_shares": {
        "no_distant_metastases": 0.52,
        "hereditary_syndrome": 0.07,
        "grade_g3_nec": 0.14,
        "time_zero_before_2000": 0.25,
        "time_zero_after_2019": 0.02,
    },
    "age_bins_years": {"<50": [30, 50], "50-59": [50, 60], "60-69": [60, 70], ">70": [70, 86]},
    "size_bins_mm": {"<2": [8, 19], "2-5": [20, 50], ">5": [51, 110]},
    "liver_bins": {"1-3": [1, 3], "4-9": [4, 9], ">=10": [10, 45]},
    "liver_na_share_zero": 0.5,
    "ki67_missing_share": 0.08,
    "os": {
        "shape": 1.35,
        "scale_years": {"SG": 9.8, "non-SG": 6.6},
        "log_hr": {
            "age_per_10y": 0.25,
            "charlson_ge2": 0.35,
            "liver_ge10": 0.35,
            "grade_g2": 0.25,
            "extra_abdominal": 0.30,
            "size_gt5": 0.15,
        },
        "early_deaths_sg": 3,
        "ineligible_scale_factor": {
            "no_distant_metastases": 3.0,
            "hereditary_syndrome": 1.5,
            "grade_g3_nec": 0.35,
            "time_zero_before_2000": 1.0,
            "time_zero_after_2019": 1.0,
        },
    },
    "pfs": {
        "grace_days": 90,
        "shape": 0.8,
        "scale_years": {"SG": 2.05, "non-SG": 2.75},
        "later_gap_shape": 1.2,
        "later_gap_scale_years": 0.4,
    },
    "loss_to_followup_per_year": 0.02,
    "treatment_ever": {
        # probability of ever being planned (chemotherapy line k only with line k - 1); the
        # realised share is lower: a later treatment is dropped after death or censoring
        "SG": {
            "chemotherapy_1": 0.85,
            "chemotherapy_2": 0.85,
            "chemotherapy_3": 0.64,
            "interferon_alpha": 0.37,
            "somatostatin_analogue": 0.73,
            "liver_resection": 0.44,
            "thermal_ablation": 0.33,
            "hepatic_artery_embolization": 0.68,
            "prrt": 0.075,
        },
        "non-SG": {
            "chemotherapy_1": 0.84,
            "chemotherapy_2": 0.81,
            "chemotherapy_3": 0.80,
            "interferon_alpha": 0.20,
            "somatostatin_analogue": 0.92,
            "liver_resection": 0.20,
            "thermal_ablation": 0.0,
            "hepatic_artery_embolization": 0.45,
            "prrt": 0.20,
        },
    },
    "treatment_initial": {
        # probability that a planned treatment is part of the initial plan (time zero..+90 d)
        "SG": {
            "somatostatin_analogue": 0.55,
            "chemotherapy_1": 0.25,
            "liver_resection": 0.45,
            "thermal_ablation": 0.40,
        },
        "non-SG": {
            "somatostatin_analogue": 0.60,
            "chemotherapy_1": 0.35,
            "hepatic_artery_embolization": 0.10,
        },
    },
    "clavien_dindo_counts": {"0": 30, "1": 16, "2": 5, "3": 8, "4": 3, "5": 3},
    "resection_type_counts": {
        "distal_pancreatectomy": 48,
        "pancreaticoduodenectomy": 15,
        "central_pancreatectomy": 1,
        "enucleation": 1,
    },
}

LATER_PRIORITY = {  # mean rank of a later treatment in the sequence (lower = earlier)
    "somatostatin_analogue": 0.0,
    "chemotherapy_1": 0.5,
    "hepatic_artery_embolization": 1.2,
    "liver_resection": 1.0,
    "thermal_ablation": 1.2,
    "interferon_alpha": 1.2,
    "chemotherapy_2": 2.0,
    "prrt": 2.8,
    "chemotherapy_3": 3.0,
}
DURATION_DAYS = {  # (low, high) treatment duration; None = single event (no end date)
    "chemotherapy": (90, 240),
    "somatostatin_analogue": (180, 1500),
    "interferon_alpha": (90, 365),
    "prrt": (100, 200),
    "targeted_therapy": (90, 500),
    "radiotherapy": (5, 30),
    "liver_resection": None,
    "thermal_ablation": None,
    "hepatic_artery_embolization": None,
}


def apportion(weights, total: int) -> np.ndarray:
    """Integer counts summing to ``total`` proportional to ``weights`` (largest remainder)."""
    w = np.asarray(weights, dtype=float)
    if total == 0 or w.sum() == 0:
        return np.zeros(len(w), dtype=int)
    exact = w / w.sum() * total
    base = np.floor(exact).astype(int)
    rest = total - base.sum()
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:rest]] += 1
    return base


def _deal(rng, labels, counts) -> np.ndarray:
    arr = np.repeat(np.asarray(labels, dtype=object), counts)
    return arr[rng.permutation(arr.size)]


@dataclass
class Truth:
    """The CDM-level truth: one row per raw patient record, plus treatments and defects."""

    persons: pd.DataFrame
    treatments: pd.DataFrame
    defects: list = field(default_factory=list)
    records: pd.DataFrame | None = None  # one row per raw patient record (set by generate)
    record_treatments: pd.DataFrame | None = None  # treatments with the record they are in
    referrals: list = field(default_factory=list)
    n_patients: int = DEFAULT_PATIENTS
    seed: int = DEFAULT_SEED


def _days(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float)).astype("timedelta64[D]")


def published_table1(path=None) -> dict:
    """Table 1 before matching from the project's copy of the publication.

    Returns ``{variable: (levels, sg_counts, non_sg_counts)}`` read from
    ``resources/published/kjaer2022.yaml``.
    """
    import yaml

    from pannet.config import PROJECT_ROOT

    path = path or PROJECT_ROOT / "resources" / "published" / "kjaer2022.yaml"
    with open(path, encoding="utf-8") as fh:
        pub = yaml.safe_load(fh)
    out = {}
    for var, spec in pub["table1"]["variables"].items():
        levels = tuple(spec["levels"])
        if levels != cdm.TABLE1_LEVELS[var]:
            raise ValueError(f"{path}: table1.{var} levels {levels} differ from pannet.cdm")
        out[var] = (levels, [c[0] for c in spec["before"]], [c[1] for c in spec["before"]])
    return out


def simulate(n_patients: int = DEFAULT_PATIENTS, seed: int = DEFAULT_SEED) -> Truth:
    """Draw the synthetic cohort at the CDM level.

    Parameters
    ----------
    n_patients : int
        Raw patient rows over the three exports (>= 100).
    seed : int
        Master seed (numpy SeedSequence; one child stream per model part).
    """
    if n_patients < 100:
        raise ValueError(f"--patients must be at least 100 (got {n_patients})")
    P = PARAMETERS
    ss = np.random.SeedSequence(seed)
    r_layout, r_cov, r_surv, r_treat, r_ids, r_inel = (
        np.random.default_rng(s) for s in ss.spawn(6)
    )
    scale = n_patients / P["published_rows"]
    n_ref = max(1, round(scale))
    n_persons = n_patients - n_ref
    n_elig = round(P["published_eligible"] * scale)
    n_sg = round(P["published_sg"] * scale)
    n_non = n_elig - n_sg
    n_inel = n_persons - n_elig

    # ---- eligible: Table 1 levels dealt per group ---------------------------------
    t1 = published_table1()
    group = np.array(["SG"] * n_sg + ["non-SG"] * n_non, dtype=object)
    cols: dict[str, np.ndarray] = {}
    for var, (levels, sg_counts, non_counts) in t1.items():
        a = _deal(r_cov, levels, apportion(sg_counts, n_sg))
        b = _deal(r_cov, levels, apportion(non_counts, n_non))
        cols[var] = np.concatenate([a, b])
    elig = pd.DataFrame({"group": group, **cols})
    elig["reason"] = "eligible"

    # ---- ineligible: one reason each; Table 1-like levels from the pooled margins ----
    reasons = list(P["ineligible_reason_shares"])
    rcounts = apportion(list(P["ineligible_reason_shares"].values()), n_inel)
    inel = pd.DataFrame({"reason": _deal(r_inel, reasons, rcounts)})
    for var, (levels, sg_counts, non_counts) in t1.items():
        w = np.asarray(sg_counts) + np.asarray(non_counts)
        inel[var] = r_inel.choice(np.asarray(levels, dtype=object), size=n_inel, p=w / w.sum())
    resected_p = np.where(inel["reason"].eq("no_distant_metastases"), 0.6, 0.3)
    inel["group"] = np.where(r_inel.random(n_inel) < resected_p, "SG", "non-SG")
    df = pd.concat([elig, inel], ignore_index=True)
    n = len(df)
    df["eligible"] = df["reason"].eq("eligible")

    # ---- dates: time zero, diagnosis, metastasis, resection, birth ------------------
    r = r_cov
    period = df["calendar_period"].to_numpy()
    lo = np.where(period == "2000-2009", np.datetime64("2000-01-10"), np.datetime64("2010-01-10"))
    span = np.where(period == "2000-2009", 3632, 3631)
    reason = df["reason"].to_numpy()
    early = reason == "time_zero_before_2000"
    lo = np.where(early, np.datetime64("1986-06-01"), lo)
    span = np.where(early, 4900, span)
    late = reason == "time_zero_after_2019"
    lo = np.where(late, np.datetime64("2020-01-15"), lo)
    span = np.where(late, 500, span)
    t0 = lo + _days(r.random(n) * span)
    sg = df["group"].to_numpy() == "SG"
    nomets = reason == "no_distant_metastases"
    # SG: diagnosis 2-17 weeks before surgery, metastases found between the two
    dx_gap = np.where(sg, r.integers(14, 120, n), 0)
    # non-SG: synchronous (70 %) or metachronous metastases up to 5 years after diagnosis
    meta_gap = np.where(r.random(n) < 0.7, 0, r.integers(60, 1800, n))
    dx = np.where(sg, t0 - _days(dx_gap), t0 - _days(np.where(sg, 0, meta_gap)))
    if late.any():  # diagnosed in 2019, metastatic in 2020-2021
        dx = np.where(late, np.datetime64("2019-01-01") + _days(r.integers(0, 360, n)), dx)
    mets = np.where(sg, dx + _days(r.random(n) * dx_gap * 0.5), t0)
    resection = np.where(sg, t0, np.datetime64("NaT"))
    mets = np.where(nomets, np.datetime64("NaT"), mets)
    # a no-metastasis patient: diagnosis anywhere in 1985-2019, resected (60 %) soon after
    dx_nm = np.datetime64("1985-01-10") + _days(r.random(n) * 12700)
    dx = np.where(nomets, dx_nm, dx)
    resection = np.where(nomets & sg, dx_nm + _days(r.integers(20, 150, n)), resection)
    t0 = np.where(nomets, np.where(sg, resection, dx_nm), t0)
    dx = np.maximum(dx, np.datetime64("1985-01-02"))
    mets = np.where(nomets, mets, np.minimum(np.maximum(mets, dx), t0))

    age_lo = np.array([P["age_bins_years"][a][0] for a in df["age_group"]], dtype=float)
    age_hi = np.array([P["age_bins_years"][a][1] for a in df["age_group"]], dtype=float)
    age = age_lo + 0.03 + r.random(n) * (age_hi - age_lo - 0.06)
    birth = t0 - _days(age * YEAR)

    # ---- tumour and patient characteristics ------------------------------------------
    grade = df["who_grade"].to_numpy().copy()
    g3 = reason == "grade_g3_nec"
    grade[g3] = np.where(r_inel.random(g3.sum()) < 0.65, "G3", "NEC")
    syndrome = np.full(n, "none", dtype=object)
    syn = reason == "hereditary_syndrome"
    syndrome[syn] = r_inel.choice(
        ["MEN1", "VHL", "NF1", "TSC"], size=syn.sum(), p=[0.7, 0.15, 0.1, 0.05]
    )
    ki67 = np.round(
        np.select(
            [grade == "G1", grade == "G2", grade == "G3"],
            [0.5 + r.random(n) * 2.4, 3 + r.random(n) * 16.5, 21 + r.random(n) * 30],
            40 + r.random(n) * 50,
        ),
        1,
    )
    ki67 = np.where(r.random(n) < P["ki67_missing_share"], np.nan, ki67)

    size_mm = np.full(n, np.nan)
    for lev, (a, b) in P["size_bins_mm"].items():
        m = df["primary_size_cm"].to_numpy() == lev
        size_mm[m] = r.integers(a, b + 1, m.sum())
    liver = np.full(n, np.nan)
    lv = df["liver_metastases_count"].to_numpy()
    for lev, (a, b) in P["liver_bins"].items():
        m = lv == lev
        liver[m] = (
            np.minimum(a + np.floor(r.exponential((b - a) / 2 + 1, m.sum())), b)
            if lev == ">=10"
            else r.integers(a, b + 1, m.sum())
        )
    na_zero = (lv == "N/A") & (r.random(n) < P["liver_na_share_zero"])
    liver[na_zero] = 0
    liver[nomets] = 0
    extra = df["extra_abdominal_metastases"].to_numpy() == "Yes"
    extra[nomets] = False

    cg = df["charlson_group"].to_numpy()
    u = r.random(n)
    charlson = np.select(
        [cg == "0-1", cg == "2-3"],
        [np.where(u < 0.6, 0, 1), np.where(u < 0.6, 2, 3)],
        np.where(u < 0.5, 4, np.where(u < 0.8, 5, 6)),
    )

    # ---- surgery ----------------------------------------------------------------------
    rtype = np.full(n, None, dtype=object)
    cd = np.full(n, -1)
    sg_el = np.flatnonzero(sg & df["eligible"].to_numpy())
    rt = P["resection_type_counts"]
    rtype[sg_el] = _deal(r, list(rt), apportion(list(rt.values()), sg_el.size))
    cdc = P["clavien_dindo_counts"]
    cd[sg_el] = _deal(r, [int(k) for k in cdc], apportion(list(cdc.values()), sg_el.size))
    sg_in = np.flatnonzero(sg & ~df["eligible"].to_numpy())
    rtype[sg_in] = r.choice(cdm.RESECTION_TYPES, size=sg_in.size, p=[0.6, 0.25, 0.03, 0.08, 0.04])
    cd[sg_in] = r.choice([0, 1, 2, 3], size=sg_in.size, p=[0.55, 0.25, 0.12, 0.08])

    # ---- overall survival (Weibull PH), censoring -------------------------------------
    os_p = P["os"]
    b = os_p["log_hr"]
    lp = (
        b["age_per_10y"] * (age - 60) / 10
        + b["charlson_ge2"] * (charlson >= 2)
        + b["liver_ge10"] * (np.nan_to_num(liver) >= 10)
        + b["grade_g2"] * (grade == "G2")
        + b["extra_abdominal"] * extra
        + b["size_gt5"] * (np.nan_to_num(size_mm) > 50)
    )
    lp = lp - lp[df["eligible"].to_numpy()].mean()
    scale_g = np.where(sg, os_p["scale_years"]["SG"], os_p["scale_years"]["non-SG"])
    factor = np.array([os_p["ineligible_scale_factor"].get(x, 1.0) for x in reason])
    # stratified uniforms within each eligible group: the realised curve follows the model
    uu = r_surv.random(n)
    for gname in ("SG", "non-SG"):
        m = np.flatnonzero(df["eligible"].to_numpy() & (df["group"].to_numpy() == gname))
        uu[m] = (r_surv.permutation(m.size) + r_surv.random(m.size)) / m.size
    t_os = scale_g * factor * (-np.log(uu) / np.exp(lp)) ** (1 / os_p["shape"])
    early_death = np.zeros(n, dtype=bool)
    early_death[sg_el[cd[sg_el] == 5]] = True
    t_os = np.where(early_death, r_surv.integers(8, 85, n) / YEAR, t_os)
    ltfu = r_surv.exponential(1 / P["loss_to_followup_per_year"], n)
    end_admin = (ADMIN_END - t0).astype(float) / YEAR
    follow = np.minimum(end_admin, ltfu)
    dead = t_os <= follow
    t_end = np.where(dead, t_os, follow)
    death = np.where(dead, t0 + _days(t_os * YEAR), np.datetime64("NaT"))
    last_fu = t0 + _days(t_end * YEAR)
    last_fu = np.maximum(last_fu, t0)

    # ---- progression: first change of therapy after the grace window -----------------
    pf = P["pfs"]
    scale_p = np.where(sg, pf["scale_years"]["SG"], pf["scale_years"]["non-SG"])
    up = r_surv.random(n)
    for gname in ("SG", "non-SG"):
        m = np.flatnonzero(df["eligible"].to_numpy() & (df["group"].to_numpy() == gname))
        up[m] = (r_surv.permutation(m.size) + r_surv.random(m.size)) / m.size
    t_prog = (pf["grace_days"] + 1) / YEAR + scale_p * (-np.log(up)) ** (1 / pf["shape"])
    t_prog = np.where(nomets, np.inf, t_prog)

    persons = pd.DataFrame(
        {
            "group": df["group"],
            "eligible": df["eligible"],
            "reason": reason,
            "sex": df["sex"].to_numpy(),
            "birth_date": birth,
            "diagnosis_date": dx,
            "metastasis_date": mets,
            "hereditary_syndrome": syndrome,
            "who_grade": grade,
            "ki67": ki67,
            "hormonal_function": df["hormonal_function"].to_numpy(),
            "size_mm": size_mm,
            "liver_metastases_count": liver,
            "extra_abdominal_metastases": extra,
            "charlson_index": charlson,
            "primary_resection_date": resection,
            "resection_type": rtype,
            "clavien_dindo": cd,
            "death_date": death,
            "last_followup_date": last_fu,
            "time_zero": t0,
            "t_prog_years": t_prog,
            **{f"t1_{k}": df[k].to_numpy() for k in cdm.TABLE1_LEVELS},
        }
    )
    cc = _charlson_conditions(r_cov, charlson)
    for j, name in enumerate(cdm.CHARLSON_WEIGHTS):
        persons[f"cc_{name}"] = cc[:, j]
    treatments = _treatments(r_treat, persons)
    persons = _assign_sites_and_ids(r_layout, r_ids, persons, n_patients, n_ref)
    return Truth(persons=persons, treatments=treatments, n_patients=n_patients, seed=seed)


def _charlson_conditions(rng, index: np.ndarray) -> np.ndarray:
    """Component conditions (bool matrix, columns = CHARLSON_WEIGHTS order) summing to index.

    Index k is split into n2 conditions of weight 2 (uniform 0..k // 2, at most 4) and
    k - 2 n2 of weight 1, each set drawn without replacement (random ranks per person).
    """
    names = list(cdm.CHARLSON_WEIGHTS)
    ones = [j for j, k in enumerate(names) if cdm.CHARLSON_WEIGHTS[k] == 1]
    twos = [
        j
        for j, k in enumerate(names)
        if cdm.CHARLSON_WEIGHTS[k] == 2 and k not in ("leukemia", "lymphoma")
    ]
    n = len(index)
    k = np.asarray(index, dtype=int)
    n2 = np.minimum(np.floor(rng.random(n) * (k // 2 + 1)).astype(int), len(twos))
    n1 = k - 2 * n2
    rank1 = np.argsort(np.argsort(rng.random((n, len(ones))), axis=1), axis=1)
    rank2 = np.argsort(np.argsort(rng.random((n, len(twos))), axis=1), axis=1)
    out = np.zeros((n, len(names)), dtype=bool)
    out[:, ones] = rank1 < n1[:, None]
    out[:, twos] = rank2 < n2[:, None]
    return out


def _treatments(rng, persons: pd.DataFrame) -> pd.DataFrame:
    """Treatment records per person (``person`` = row position in ``persons``)."""
    P = PARAMETERS
    grace = P["pfs"]["grace_days"]
    rows_p, rows_t, rows_s = [], [], []
    t0 = persons["time_zero"].to_numpy()
    last = persons["last_followup_date"].to_numpy()
    tprog = persons["t_prog_years"].to_numpy()
    groups = persons["group"].to_numpy()
    reasons = persons["reason"].to_numpy()
    kinds = list(P["treatment_ever"]["SG"])
    probs = {g: np.array([P["treatment_ever"][g][k] for k in kinds]) for g in ("SG", "non-SG")}
    draws = rng.random((len(persons), len(kinds)))
    prio_noise = rng.normal(0, 0.8, (len(persons), len(kinds)))
    init_draw = rng.random((len(persons), len(kinds)))
    gaps = (
        rng.weibull(P["pfs"]["later_gap_shape"], (len(persons), 12))
        * P["pfs"]["later_gap_scale_years"]
        * YEAR
        + 30
    )
    init_day = rng.integers(0, grace + 1, (len(persons), len(kinds)))
    dur_u = rng.random((len(persons), 14))
    # plain Python scalars in the per-person loop (numpy scalar indexing is 10x slower)
    horizon = ((last - t0) // np.timedelta64(1, "D")).astype(int).tolist()
    prog_day = np.round(tprog * YEAR, 0)
    prog_day = np.where(np.isfinite(prog_day), prog_day, 10**9).astype(np.int64).tolist()
    planned_all = draws < np.where((groups == "SG")[:, None], probs["SG"], probs["non-SG"])
    planned_all[:, 1] &= planned_all[:, 0]  # chemotherapy lines are nested
    planned_all[:, 2] &= planned_all[:, 1]
    planned_l = planned_all.tolist()
    noise_l = prio_noise.tolist()
    init_l = init_draw.tolist()
    init_day_l = init_day.tolist()
    gaps_l = gaps.astype(int).tolist()
    prio = [LATER_PRIORITY[k] for k in kinds]
    init_p = {g: [P["treatment_initial"][g].get(k, 0.0) for k in kinds] for g in ("SG", "non-SG")}
    day0 = {
        g: [g == "SG" and k in ("liver_resection", "thermal_ablation") for k in kinds]
        for g in ("SG", "non-SG")
    }
    groups_l = groups.tolist()
    skip = (reasons == "no_distant_metastases").tolist()
    rows_x = []
    for i in range(len(persons)):
        if skip[i]:
            continue
        g = groups_l[i]
        ip, d0, pl = init_p[g], day0[g], planned_l[i]
        start_of: list[tuple[str, int]] = []
        later: list[tuple[float, str]] = []
        for j, k in enumerate(kinds):
            if not pl[j]:
                continue
            if init_l[i][j] < ip[j]:
                start_of.append((k, 0 if d0[j] else init_day_l[i][j]))
            else:
                later.append((prio[j] + noise_l[i][j], k))
        later.sort()
        # keep chemotherapy lines in order: re-label the chemo entries by position
        n_chemo = sum(1 for k, _ in start_of if k.startswith("chemotherapy"))
        for x, (pr, k) in enumerate(later):
            if k.startswith("chemotherapy"):
                n_chemo += 1
                later[x] = (pr, f"chemotherapy_{n_chemo}")
        if prog_day[i] <= horizon[i]:
            if not later:
                later = [(0.0, "targeted_therapy")]
            day = prog_day[i]
            for x, (_, k) in enumerate(later):
                if day > horizon[i]:
                    break
                start_of.append((k, day))
                day += gaps_l[i][x % 12]
        for x, (k, day) in enumerate(start_of):
            if day > horizon[i]:  # nothing starts after death or the last follow-up
                continue
            rows_p.append(i)
            rows_t.append(k)
            rows_s.append(day)
            rows_x.append(x % 14)
    pers = np.array(rows_p, dtype=int)
    kind = np.array(rows_t, dtype=object)
    chemo = np.char.startswith(kind.astype(str), "chemotherapy")
    line = np.where(
        chemo, [int(k.rsplit("_", 1)[1]) if c else -1 for k, c in zip(kind, chemo, strict=True)], -1
    )
    name = np.where(chemo, "chemotherapy", kind).astype(object)
    start = t0[pers].astype("datetime64[D]") + np.array(rows_s, dtype="timedelta64[D]")
    lo = np.array([(DURATION_DAYS[k] or (0, 0))[0] for k in name])
    hi = np.array([(DURATION_DAYS[k] or (0, 0))[1] for k in name])
    dur = (lo + dur_u[pers, np.array(rows_x, dtype=int)] * (hi - lo)).astype(int)
    end = start + dur.astype("timedelta64[D]")
    single = np.array([DURATION_DAYS[k] is None for k in name], dtype=bool)
    end = np.where(single | (end > last[pers].astype("datetime64[D]")), np.datetime64("NaT"), end)
    tr = pd.DataFrame(
        {
            "person": pers,
            "treatment": name,
            "line": line.astype(int),
            "start_date": start.astype("datetime64[D]"),
            "end_date": end.astype("datetime64[D]"),
        }
    )
    return tr.sort_values(["person", "start_date", "treatment"], kind="stable", ignore_index=True)


SV_FEMALE = ["Anna", "Eva", "Maria", "Karin", "Sara", "Lena"]
SV_MALE = ["Erik", "Lars", "Karl", "Anders", "Johan", "Per"]
SV_LAST = [
    "Exempelsson",
    "Testberg",
    "Provström",
    "Demosson",
    "Fiktivsson",
    "Låtsasson",
    "Påhittad",
    "Syntetisk",
]
EN_FEMALE = ["Mary", "Linda", "Susan", "Karen", "Nancy", "Betty"]
EN_MALE = ["John", "Robert", "Michael", "David", "James", "William"]
EN_LAST = ["Sample", "Placeholder", "Testman", "Fakeley", "Demo", "Synthetic", "Madeup", "Example"]


def _assign_sites_and_ids(r_layout, r_ids, persons, n_patients, n_ref) -> pd.DataFrame:
    """Site of each person's (first) record, referrals, identifiers and names."""
    P = PARAMETERS
    sites = list(P["site_row_shares"])
    rows = apportion(list(P["site_row_shares"].values()), n_patients)
    per_site = rows.copy()
    per_site[sites.index("uppsala")] -= n_ref  # the referrals' Uppsala rows
    label = _deal(r_layout, sites, per_site)
    n = len(persons)
    sg_el = np.flatnonzero(persons["eligible"].to_numpy() & persons["group"].eq("SG").to_numpy())
    ref = np.sort(r_layout.choice(sg_el, n_ref, replace=False))
    for i in ref:
        if label[i] != "gothenburg":
            pool = np.flatnonzero((label == "gothenburg") & ~np.isin(np.arange(n), ref))
            j = pool[0]
            label[j], label[i] = label[i], "gothenburg"
    persons = persons.copy()
    persons["site"] = label
    persons["referred_from_uppsala"] = np.isin(np.arange(n), ref)
    # synthetic identifiers: personnummer with serial 900-999 (parity = sex), MRN BWH+7 digits
    from pannet.sites import PERSONNUMMER_REFERENCE_YEAR, luhn_digit

    birth = pd.to_datetime(persons["birth_date"])
    male = persons["sex"].eq("Male").to_numpy()
    key = pd.DataFrame({"b": birth, "m": male})
    rank = key.groupby(["b", "m"]).cumcount().to_numpy()
    if rank.max() >= 50:
        raise ValueError("too many synthetic persons share a birth date and sex (max 50)")
    serial = 900 + 2 * rank + male.astype(int)
    yymmdd = birth.dt.strftime("%y%m%d").to_numpy()
    nine = [f"{a}{s:03d}" for a, s in zip(yymmdd, serial, strict=True)]
    # separator: "-" when the latest year <= the reference year ending in YY is the birth
    # year, else "+" (aged 100 or more), as pannet.sites.personnummer_birth_date reads it
    ref = PERSONNUMMER_REFERENCE_YEAR
    year = birth.dt.year.to_numpy()
    sep = np.where(ref - (ref - year % 100) % 100 == year, "-", "+")
    pnr = [f"{x[:6]}{c}{x[6:]}{luhn_digit(x)}" for x, c in zip(nine, sep, strict=True)]
    mrn_num = r_ids.choice(9_000_000, size=n, replace=False) + 1_000_000
    is_bos = label == "boston"
    persons["local_id"] = np.where(is_bos, [f"BWH{m:07d}" for m in mrn_num], pnr)
    k = r_ids.integers(0, 6, n)  # six first names per sex and language
    first = np.where(
        is_bos,
        np.where(male, np.array(EN_MALE)[k], np.array(EN_FEMALE)[k]),
        np.where(male, np.array(SV_MALE)[k], np.array(SV_FEMALE)[k]),
    )
    last = np.where(is_bos, r_ids.choice(EN_LAST, n), r_ids.choice(SV_LAST, n))
    persons["first_name"] = first
    persons["last_name"] = last
    return persons
