"""Table 2, surgical outcomes and the sensitivity population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from survival_data import make_cohort, make_matched

from pannet.cdm import TABLE2_TREATMENTS
from pannet.contingency import chi2_test, fisher_test
from pannet.sensitivity import SensitivityError, exclude_liver_directed, sensitivity_cohort
from pannet.surgery import surgical_outcomes
from pannet.table2 import table2


def _published_matched() -> pd.DataFrame:
    """50 + 50 rows carrying the publication's Table 2 counts (kjaer2022.yaml)."""
    counts = {
        "first_line_chemotherapy": (35, 31),
        "second_line_chemotherapy": (20, 16),
        "third_line_chemotherapy": (10, 12),
        "interferon_alpha": (11, 4),
        "somatostatin_analogue": (34, 35),
        "liver_resection": (14, 5),
        "thermal_hepatic_ablation": (11, 0),
        "hepatic_artery_embolization": (21, 14),
        "prrt_177lu": (2, 3),
    }
    df = pd.DataFrame({"group": ["SG"] * 50 + ["non-SG"] * 50})
    for t, (a, b) in counts.items():
        df[t] = np.r_[np.arange(50) < a, np.arange(50) < b].astype(int)
    return df


def test_table2_on_published_counts():
    """Published p (auto rule): first line 0.398 (printed 0.405, a known misprint), second
    line 0.405, third 0.629, somatostatin analogue 0.829, embolization 0.142; thermal
    ablation 11 vs 0 has expected counts 5.5 -> chi-square, p < 0.001 (as printed);
    PRRT 2 vs 3 -> Fisher p = 1.0 (printed 0.646 is the chi-square value)."""
    tab = table2(_published_matched()).set_index("variable")
    assert list(tab.index) == list(TABLE2_TREATMENTS)
    assert tab.loc["first_line_chemotherapy", "p"] == pytest.approx(0.398, abs=5e-4)
    assert tab.loc["second_line_chemotherapy", "p"] == pytest.approx(0.405, abs=5e-4)
    assert tab.loc["third_line_chemotherapy", "p"] == pytest.approx(0.629, abs=5e-4)
    assert tab.loc["somatostatin_analogue", "p"] == pytest.approx(0.829, abs=5e-4)
    assert tab.loc["hepatic_artery_embolization", "p"] == pytest.approx(0.142, abs=5e-4)
    assert tab.loc["thermal_hepatic_ablation", "test"] == "chi2"
    assert tab.loc["thermal_hepatic_ablation", "p_text"] == "<0.001"
    assert tab.loc["prrt_177lu", "test"] == "fisher"
    assert tab.loc["prrt_177lu", "p"] == pytest.approx(1.0)
    assert tab.loc["liver_resection", "n_SG"] == 14
    assert tab.loc["liver_resection", "pct_SG"] == pytest.approx(28.0)


def test_table2_override_and_bad_values():
    m = _published_matched()
    tab = table2(m, test_override={"prrt_177lu": "chi2"}).set_index("variable")
    assert tab.loc["prrt_177lu", "test_rule"] == "override"
    assert tab.loc["prrt_177lu", "p"] == pytest.approx(chi2_test([[2, 3], [48, 47]])["p"])
    assert tab.loc["prrt_177lu", "p"] == pytest.approx(0.646, abs=5e-4)
    m.loc[0, "prrt_177lu"] = 2
    m["patient_key"] = [f"k{i}" for i in range(len(m))]
    with pytest.raises(ValueError, match=r"'prrt_177lu'.*\['k0'\]"):
        table2(m)


def test_surgical_outcomes():
    df = make_cohort()
    m = make_matched(df)
    out = surgical_outcomes(df, m)
    sg = df[df["group"] == "SG"]
    rt = out[out["measure"] == "resection_type"].set_index("level")
    assert rt.loc["distal_pancreatectomy", "n"] == 48 and rt.loc["enucleation", "n"] == 1
    assert rt["total"].eq(65).all()
    cd = out[out["measure"] == "clavien_dindo"].set_index("level")
    assert cd.loc[">=2", "n"] == int((sg["clavien_dindo"] >= 2).sum())
    assert cd.loc[">=3", "pct"] == pytest.approx(100 * (sg["clavien_dindo"] >= 3).sum() / 65)
    mort = out[(out["measure"] == "mortality_90d") & (out["population"] == "matched")]
    assert mort["group"].tolist() == ["SG", "non-SG"]
    a, b = mort["n"].tolist()
    expected = fisher_test([[a, b], [50 - a, 50 - b]])["p"]
    assert mort["p"].iat[0] == pytest.approx(expected)
    assert mort["test"].iat[0] == "fisher"  # so few deaths: expected counts < 5


def test_sensitivity_exclusion_keeps_singletons_clustered():
    df = make_cohort()
    m = make_matched(df)
    s = exclude_liver_directed(m)
    assert (s["liver_directed_therapy"] == 0).all()
    assert len(s) == int((m["liver_directed_therapy"] == 0).sum())
    sizes = s.groupby("pair_id")["pair_id"].transform("size")
    assert (s["pair_complete"] == (sizes == 2)).all()
    assert (s["sensitivity_variant"] == "exclusion").all()


def test_sensitivity_flags_must_agree():
    m = make_matched(make_cohort())
    m.loc[0, "liver_directed_therapy"] = 1 - m.loc[0, "liver_directed_therapy"]
    with pytest.raises(SensitivityError, match="disagrees"):
        exclude_liver_directed(m)


def test_sensitivity_rematch_uses_matching():
    df = make_cohort(n_sg=40, n_non=90, seed=3)
    cfg = {
        "covariates": ["sex", "who_grade", "calendar_period"],
        "distance": "logit",
        "caliper": 0.2,
        "std_caliper": True,
        "order": "largest",
        "ratio": 1,
        "replace": False,
    }
    s = sensitivity_cohort(make_matched(df, 20), df, rematch=True, matching=cfg, seed=1)
    assert (s["liver_directed_therapy"] == 0).all()
    assert (s.groupby("pair_id")["group"].nunique() == 2).all()
    assert (s["sensitivity_variant"] == "rematch").all()
