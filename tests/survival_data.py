"""A small synthetic analysis cohort (the analysis.parquet schema) for the survival tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pannet.cdm import ANALYSIS_COLUMNS, TABLE1_LEVELS, TABLE2_TREATMENTS


def make_cohort(n_sg: int = 65, n_non: int = 129, seed: int = 1) -> pd.DataFrame:
    """SG live longer (hazard ratio about 0.6); exponential OS, PFS shorter than OS."""
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    n = n_sg + n_non
    treated = np.r_[np.ones(n_sg, int), np.zeros(n_non, int)]
    rate = np.where(treated == 1, 0.09, 0.15)
    death = rng.exponential(1 / rate)
    cens = rng.uniform(2, 16, n)
    os_years = np.round(np.minimum(death, cens) * 365.25) / 365.25
    os_event = (death <= cens).astype(int)
    prog = rng.exponential(1 / (rate * 4))
    pfs_years = np.minimum(np.round(prog * 365.25) / 365.25, os_years)
    pfs_event = np.where(prog * 1 < os_years, 1, os_event)
    wait = np.where(treated == 1, rng.uniform(0.05, 1.5, n), 0.0)
    df = pd.DataFrame(
        {
            "patient_key": [f"p{i:04d}" for i in range(n)],
            "site": rng.choice(["uppsala", "gothenburg", "boston"], n),
            "group": np.where(treated == 1, "SG", "non-SG"),
            "treated": treated,
            "time_zero": pd.Timestamp("2010-01-01")
            + pd.to_timedelta(rng.integers(0, 3000, n), "D"),
            "age_years": rng.uniform(35, 80, n),
            "os_years": os_years,
            "os_event": os_event,
            "pfs_years": pfs_years,
            "pfs_event": pfs_event,
            "naive_os_years": os_years + wait,
        }
    )
    for k, levels in TABLE1_LEVELS.items():
        df[k] = rng.choice(list(levels), n)
    for t in TABLE2_TREATMENTS:
        df[t] = rng.binomial(1, np.where(treated == 1, 0.3, 0.15))
    df["liver_directed_therapy"] = np.maximum(df["liver_resection"], df["thermal_hepatic_ablation"])
    types = np.array(
        ["distal_pancreatectomy"] * 48
        + ["pancreaticoduodenectomy"] * 15
        + ["central_pancreatectomy", "enucleation"]
    )
    df["resection_type"] = pd.array(
        np.where(treated == 1, np.resize(types, n), None), dtype="string"
    )
    cd = rng.choice([0, 1, 2, 3, 4], n, p=[0.5, 0.2, 0.08, 0.17, 0.05])
    df["clavien_dindo"] = pd.Series(cd, dtype="Int64").where(treated == 1)
    df["death_90d"] = ((os_years < 90 / 365.25) & (os_event == 1)).astype(int)
    assert list(df.columns) == list(ANALYSIS_COLUMNS), set(ANALYSIS_COLUMNS) ^ set(df.columns)
    return df


def make_matched(df: pd.DataFrame, n_pairs: int = 50) -> pd.DataFrame:
    """First n_pairs SG with first n_pairs non-SG, pair_id 1..n_pairs."""
    sg = df[df["group"] == "SG"].head(n_pairs).copy()
    non = df[df["group"] == "non-SG"].head(n_pairs).copy()
    sg["pair_id"] = np.arange(1, n_pairs + 1)
    non["pair_id"] = np.arange(1, n_pairs + 1)
    return pd.concat([sg, non], ignore_index=True)
