"""Preference score (Walker et al. 2013), equipoise share, caliper drops, generalizability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pannet.equipoise import (
    caliper_summary,
    equipoise_summary,
    generalizability_table,
    preference_histogram,
    preference_score,
    smd_proportion,
)


def test_preference_score_removes_the_treated_share():
    ps = np.array([0.1, 0.2, 0.5, 0.8, 0.9])
    # with half treated the preference score is the propensity score itself
    half = np.array([1, 0, 1, 0])
    np.testing.assert_allclose(preference_score(ps[:4], half), ps[:4])
    # logit(F) - logit(PS) = -logit(P), the same for every patient
    t = np.array([1, 0, 0, 0, 0])  # P = 0.2
    f = preference_score(ps, t)
    lg = np.log(f / (1 - f)) - np.log(ps / (1 - ps))
    np.testing.assert_allclose(lg, -np.log(0.2 / 0.8))
    with pytest.raises(ValueError, match="inside"):
        preference_score([0.0, 0.5], [1, 0])
    with pytest.raises(ValueError, match="both groups"):
        preference_score([0.2, 0.5], [1, 1])


def test_equipoise_share_and_histogram():
    ps = np.array([0.05, 0.3, 0.5, 0.7, 0.95, 0.6])
    t = np.array([1, 0, 1, 0, 1, 0])  # P = 0.5: F = PS; bounds inclusive
    s = equipoise_summary(ps, t).set_index("group")
    assert s.loc["all", "n_in_bounds"] == 4
    assert s.loc["all", "share_in_bounds"] == pytest.approx(4 / 6)
    assert s.loc["treated", "share_in_bounds"] == pytest.approx(1 / 3)
    assert s.loc["control", "share_in_bounds"] == pytest.approx(1.0)
    h = preference_histogram(ps, t, bins=10)
    assert h.groupby("group")["n"].sum().to_dict() == {"control": 3, "treated": 3}
    assert h.loc[(h.group == "treated") & (h.bin_low == 0.0), "n"].item() == 1
    with pytest.raises(ValueError, match="bounds"):
        equipoise_summary(ps, t, bounds=(0.7, 0.3))


def test_caliper_summary():
    c = caliper_summary(60, 140, 48, caliper_width=0.31)
    assert c["n_unmatched_treated"] == 12
    assert c["share_treated_unmatched"] == pytest.approx(0.2)
    with pytest.raises(ValueError):
        caliper_summary(10, 10, 11)


def test_smd_proportion_matches_the_study_formula():
    # (0.4 - 0.2) / sqrt((0.24 + 0.16) / 2) = 0.4472136
    assert float(smd_proportion(0.4, 0.2)) == pytest.approx(0.4472135955, rel=1e-9)
    assert float(smd_proportion(0.0, 0.0)) == 0.0
    assert np.isinf(smd_proportion(1.0, 0.0))


def test_generalizability_table():
    eligible = pd.DataFrame(
        {
            "treated": [1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
            "sex": [
                "Female",
                "Male",
                "Male",
                "Male",
                "Female",
                "Female",
                "Male",
                "Female",
                "Male",
                "Female",
            ],
        }
    )
    matched = eligible.iloc[[0, 1, 4, 6]]
    g = generalizability_table(eligible, matched, ["sex"]).set_index(["cohort", "level"])
    assert g.loc[("all", "Female"), "n_eligible"] == 5
    assert g.loc[("all", "Female"), "pct_matched"] == pytest.approx(50.0)
    assert g.loc[("all", "Female"), "smd"] == pytest.approx(0.0)
    # matched treated: 1 of 2 female vs all treated 1 of 4
    assert g.loc[("treated", "Female"), "smd"] == pytest.approx(float(smd_proportion(0.5, 0.25)))
    # levels listed in the Table 1 order, including absent ones
    assert list(g.loc["all"].index) == ["Female", "Male"]
    with pytest.raises(KeyError, match="age_group"):
        generalizability_table(eligible, matched, ["age_group"])
