"""The replication check: published beside computed, with tolerance verdicts."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.stats import chi2_contingency

from pannet.replication import DEMO_NOTE, replicate


@pytest.fixture(scope="module")
def published(root):
    return yaml.safe_load((root / "resources/published/kjaer2022.yaml").read_text())


def _cohort(published, phase: str) -> pd.DataFrame:
    """A cohort whose Table 1 marginal counts are exactly the published ones."""
    variables = published["table1"]["variables"]
    n1, n0 = published["table1"]["n"][phase]
    frames = []
    for j, (g, n) in enumerate((("SG", n1), ("non-SG", n0))):
        d = {"group": [g] * n}
        for var, spec in variables.items():
            d[var] = [
                lv for lv, c in zip(spec["levels"], spec[phase], strict=True) for _ in range(c[j])
            ]
        frames.append(pd.DataFrame(d))
    df = pd.concat(frames, ignore_index=True)
    if phase == "after":
        for item, spec in published["table2"].items():
            df[item] = 0
            for g, c in zip(("SG", "non-SG"), spec["counts"], strict=True):
                idx = df.index[df["group"] == g][:c]
                df.loc[idx, item] = 1
    return df


def test_exact_counts_are_within_with_zero_difference(published):
    analysis = _cohort(published, "before")
    matched = _cohort(published, "after")
    rep = replicate(published, analysis=analysis, matched=matched, synthetic=True)
    counts = rep[(rep["kind"] == "count") & rep["section"].str.startswith(("table1", "table2"))]
    assert len(counts) > 100
    assert (counts["difference"] == 0).all() and counts["within"].all()
    # p-values: the computed one is Pearson chi-square on the computed counts
    row = rep[rep["item"] == "charlson_group p (chi2)"].iloc[0]
    t = np.array(published["table1"]["variables"]["charlson_group"]["before"]).T
    assert row["computed"] == pytest.approx(chi2_contingency(t, correction=False)[1])
    assert row["difference"] == pytest.approx(row["computed"] - 0.627)
    assert (rep["note"] == DEMO_NOTE).sum() > 0


def test_missing_artefacts_are_reported_not_faked(published):
    rep = replicate(published, analysis=None, matched=None, survival_frames=[])
    surv = rep[rep["section"].str.startswith("overall_survival")]
    assert len(surv) > 0
    assert surv["computed"].isna().all() and surv["within"].isna().all()
    assert surv["note"].str.contains("not computed").all()


def test_survival_rows_and_tolerance(published):
    summary = pd.DataFrame(
        [
            {
                "population": "all",
                "endpoint": "os",
                "group": "SG",
                "median": 7.8 + 2.0,
                "q25": 4.1,
                "q75": 10.6,
                "surv": 0.67,
                "surv_lower": 0.55,
                "surv_upper": 0.79,
            },
            {
                "population": "all",
                "endpoint": "os",
                "group": "non-SG",
                "median": 5.0,
                "q25": 2.8,
                "q75": 8.4,
                "surv": 0.516,
                "surv_lower": 0.422,
                "surv_upper": 0.61,
            },
        ]
    )
    tests = pd.DataFrame([{"population": "all", "endpoint": "os", "logrank_p": 0.0004}])
    rep = replicate(published, survival_frames=[summary, tests], tolerance={"years_abs": 1.0})
    sec = rep[rep["section"] == "overall_survival_before_matching"]
    med = sec[(sec["item"] == "median (years)") & (sec["group"] == "SG")].iloc[0]
    assert med["difference"] == pytest.approx(2.0) and med["within"] == False  # noqa: E712
    assert med["tolerance"] == 1.0
    s5 = sec[(sec["item"] == "5y survival (%)") & (sec["group"] == "non-SG")].iloc[0]
    assert s5["computed"] == pytest.approx(51.6) and bool(s5["within"])
    lr = sec[sec["item"] == "log-rank p"].iloc[0]
    assert lr["computed"] == pytest.approx(0.0004) and math.isclose(lr["published"], 0.018)
