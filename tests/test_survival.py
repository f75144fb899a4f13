"""Unit tests of pannet.survival (no R needed): values quoted from R survival 3.5-3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from survival_data import make_cohort, make_matched

from pannet import survival as sv
from pannet.km import findq

# survival::aml, x == "Maintained"
AML_TIME = [9, 13, 13, 18, 23, 28, 31, 34, 45, 48, 161]
AML_STATUS = [1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0]


def test_km_summary_aml_plain():
    """R: f <- survfit(Surv(time, status) ~ 1, aml[aml$x == "Maintained", ], conf.type = "plain")
    quantile(f): 18 31 48, lower 9 18 31, upper 34 48 NA
    summary(f, times = c(12, 30)): surv 0.909090909090909 0.613636363636364,
      std.err 0.0866784172041448 0.152632331027312,
      lower 0.739204333133848 0.314482491946437, upper 1 0.91279023532629
    summary(f, rmean = 40)$table: rmean 28.8977272727273, se(rmean) 3.4675776788916"""
    s = sv.km_summary(AML_TIME, AML_STATUS, times=(12, 30), conf_type="plain", rmst_tau=40)
    assert s["n"] == 11 and s["events"] == 7
    np.testing.assert_array_equal(s["quantiles"]["est"], [18, 31, 48])
    np.testing.assert_array_equal(s["quantiles"]["lower"], [9, 18, 31])
    np.testing.assert_array_equal(s["quantiles"]["upper"][:2], [34, 48])
    assert np.isnan(s["quantiles"]["upper"][2])
    assert s["median"] == {"est": 31, "lower": 18, "upper": 48}
    np.testing.assert_allclose(s["survival"]["est"], [0.909090909090909, 0.613636363636364])
    np.testing.assert_allclose(s["survival"]["se"], [0.0866784172041448, 0.152632331027312])
    np.testing.assert_allclose(s["survival"]["lower"], [0.739204333133848, 0.314482491946437])
    np.testing.assert_allclose(s["survival"]["upper"], [1.0, 0.91279023532629])
    np.testing.assert_allclose(
        [s["rmst"]["est"], s["rmst"]["se"]], [28.8977272727273, 3.4675776788916]
    )
    st = s["steps"]
    assert st["time"].tolist() == [9, 13, 18, 23, 28, 31, 34, 45, 48, 161]
    assert st["n_censor"].tolist() == [0, 1, 0, 0, 1, 0, 0, 1, 0, 1]
    assert st["n_risk"][0] == 11 and st["n_risk"][-1] == 1


def test_quantile_midpoint_rule():
    """S = 0.5 exactly on [2, 4): R quantile.survfit gives (2 + 4) / 2 = 3, not 2.
    R: quantile(survfit(Surv(c(1, 2, 4, 5), c(1, 1, 1, 1)) ~ 1), 0.5) -> 3"""
    s = sv.km_summary([1, 2, 4, 5], [1, 1, 1, 1], conf_type="log")
    assert s["median"]["est"] == 3.0
    # the rule is tolerance-based (sqrt(eps)), as R's findq
    assert findq([0, 1, 2], [0, 0.5 - 1e-10, 0.9], [0.5])[0] == 1.5
    assert findq([0, 1, 2], [0, 0.5 - 1e-6, 0.9], [0.5])[0] == 2.0


def test_median_undefined_when_curve_stays_above_half():
    s = sv.km_summary([1, 2, 3, 4], [1, 0, 0, 0])
    assert np.isnan(s["median"]["est"])


def test_survival_beyond_follow_up_is_nan_and_before_first_time_is_one():
    s = sv.km_summary([1, 2, 3], [1, 1, 0], times=(0.5, 10), conf_type="log-log")
    assert s["survival"]["est"][0] == 1 and s["survival"]["lower"][0] == 1
    assert np.isnan(s["survival"]["est"][1])


def test_conf_types_ordering_and_bounds():
    for ct in sv.CONF_TYPES:
        s = sv.km_summary(AML_TIME, AML_STATUS, conf_type=ct)
        st = s["steps"]
        ok = ~np.isnan(st["lower"])
        assert np.all(st["lower"][ok] <= st["surv"][ok] + 1e-15)
        assert np.all(st["upper"][ok] >= st["surv"][ok] - 1e-15)
        assert np.all((st["lower"][ok] >= 0) & (st["upper"][ok] <= 1))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="negative"):
        sv.km_summary([1, -2], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        sv.km_summary([1, 2], [1, 2])
    with pytest.raises(ValueError, match="conf_type"):
        sv.km_summary([1, 2], [1, 1], conf_type="logit")


def test_logrank_group_labels_and_df():
    """Labels do not matter, only the partition; k groups give k - 1 df (the k > 2 case
    is checked against R survdiff(~ celltype, veteran) in test_survival_reference.py)."""
    t = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10.0])
    e = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1])
    g2 = np.array([0, 1] * 5)
    two = sv.logrank(t, e, g2)
    # with only two levels used the k-group formula must reduce to (O - E)^2 / V
    three = sv.logrank(t, e, np.where(g2 == 0, "a", "b"))
    assert two["chisq"] == pytest.approx(three["chisq"], rel=1e-12)
    four = sv.logrank(t, e, np.array(list("abcd") * 2 + ["a", "b"]))
    assert four["df"] == 3 and 0 <= four["p"] <= 1


def test_cox_aml():
    """R: coxph(Surv(time, status) ~ x, aml): coef 0.915532575014718, se 0.511934275172005."""
    aml_non = ([5, 5, 8, 8, 12, 16, 23, 27, 30, 33, 43, 45], [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1])
    t = np.r_[AML_TIME, aml_non[0]]
    e = np.r_[AML_STATUS, aml_non[1]]
    x = np.r_[np.zeros(11), np.ones(12)]
    fit = sv.cox(t, e, x)
    assert fit["coef"][0] == pytest.approx(0.915532575014718, rel=1e-8)
    assert fit["se"][0] == pytest.approx(0.511934275172005, rel=1e-8)
    assert fit["hr"][0] == pytest.approx(np.exp(0.915532575014718), rel=1e-8)


def test_evalue_vanderweele_ding_example():
    """VanderWeele & Ding (2017): RR 3.9 (95 % CI 1.8 to 8.7) -> E-value 7.26, CI 3.00."""
    ev = sv.evalue(3.9, 1.8, 8.7, rare=True)
    assert ev["point"] == pytest.approx(7.26, abs=0.005)
    assert ev["ci"] == pytest.approx(3.00, abs=0.005)
    # protective effects invert; an interval containing 1 gives 1
    assert sv.evalue(1 / 3.9, 1 / 8.7, 1 / 1.8, rare=True)["point"] == pytest.approx(ev["point"])
    assert sv.evalue(0.7, 0.4, 1.2)["ci"] == 1.0


def test_evalue_common_outcome_conversion():
    """Common outcome: RR = (1 - 0.5^sqrt(HR)) / (1 - 0.5^sqrt(1/HR)); HR 0.56 -> RR 0.6701
    -> E = 1/RR + sqrt(1/RR (1/RR - 1)) = 2.349 (smaller than the rare-outcome 2.97)."""
    ev = sv.evalue(0.56, 0.46, 0.69)
    assert ev["rr"] == pytest.approx(0.67011, abs=1e-4)
    assert ev["point"] == pytest.approx(2.3494, abs=1e-3)
    assert ev["point"] < sv.evalue(0.56, rare=True)["point"]


def test_analyse_population_tables():
    df = make_cohort()
    m = make_matched(df)
    res = sv.analyse_population(m, population="matched", endpoint="os", horizon=5, rmst_tau=10)
    summ, steps, tests = res["summary"], res["steps"], res["tests"]
    assert summ["group"].tolist() == ["SG", "non-SG"]
    assert summ["n"].tolist() == [50, 50]
    for g in ("SG", "non-SG"):
        sub = m[m["group"] == g]
        s = sv.km_summary(sub["os_years"], sub["os_event"], times=(5,), rmst_tau=10)
        row = summ.set_index("group").loc[g]
        assert row["median"] == s["median"]["est"] or np.isnan(s["median"]["est"])
        assert row["surv"] == s["survival"]["est"][0]
        assert len(steps[steps["group"] == g]) == len(s["steps"]["time"])
    t = tests.iloc[0]
    assert t["cox_clustered"] and t["cox_n_clusters"] == 50
    fit = sv.cox(m["os_years"], m["os_event"], m["treated"], cluster=m["pair_id"])
    assert t["hr"] == pytest.approx(fit["hr"][0]) and t["cox_robust_se"] == pytest.approx(
        fit["robust_se"][0]
    )
    lr = sv.logrank(m["os_years"], m["os_event"], m["group"])
    assert t["logrank_p"] == pytest.approx(lr["p"])
    unmatched = sv.analyse_population(
        df, population="all", endpoint="pfs", horizon=3, cluster_column=None
    )
    assert not unmatched["tests"]["cox_clustered"].iat[0]


def test_analyse_population_names_missing_values():
    df = make_cohort()
    df.loc[3, "os_years"] = np.nan
    with pytest.raises(
        ValueError, match=r"'os_years' is missing for 1 patient\(s\), e.g. \['p0003'\]"
    ):
        sv.analyse_population(df, population="all", endpoint="os", horizon=5)


def test_immortal_time_contrast_favours_sg_naively():
    df = make_cohort()
    tab = sv.immortal_time_contrast({"all": df}, horizon=5)
    assert set(tab["design"]) == {"study", "naive"}
    hr = tab.drop_duplicates("design").set_index("design")["hr"]
    # the naive time zero adds the wait for surgery to SG's survival: a lower HR
    assert hr["naive"] < hr["study"]
    assert isinstance(tab, pd.DataFrame) and len(tab) == 4
