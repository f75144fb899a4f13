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
                "horizon": 5.0,
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
                "horizon": 5.0,
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


def test_km_steps_and_other_horizons_are_not_read_as_summaries(published):
    """The KM step table shares population/endpoint/group/surv with the summary: its first
    step must never stand for S(5 y); a summary at another horizon is not compared."""
    steps = pd.DataFrame(
        {
            "population": "matched",
            "endpoint": "pfs",
            "group": ["SG", "non-SG"],
            "time": [0.1, 0.1],
            "surv": [0.98, 0.98],
            "lower": [0.9, 0.9],
            "upper": [1.0, 1.0],
        }
    )
    summary = pd.DataFrame(
        {
            "population": "matched",
            "endpoint": "pfs",
            "group": ["SG", "non-SG"],
            "horizon": [3.0, 3.0],
            "median": [1.4, 1.5],
            "q25": [0.6, 0.9],
            "q75": [2.7, 3.1],
            "surv": [0.243, 0.253],
            "surv_lower": [0.115, 0.125],
            "surv_upper": [0.371, 0.381],
        }
    )
    rep = replicate(published, survival_frames=[steps, summary])
    sec = rep[rep["section"] == "progression_free_survival_after_matching"].set_index(
        ["item", "group"]
    )
    assert sec.loc[("3y survival (%)", "SG"), "computed"] == pytest.approx(24.3)
    assert sec.loc[("3y survival upper CI (%)", "non-SG"), "computed"] == pytest.approx(38.1)
    assert sec.loc[("3y survival (%)", "SG"), "source"] == "survival/matched_pfs_summary.parquet"
    # the same summary labelled 5-year: the published 3-year figure is left uncomputed
    rep5 = replicate(published, survival_frames=[summary.assign(horizon=5.0)])
    row = rep5[
        (rep5["section"] == "progression_free_survival_after_matching")
        & (rep5["item"] == "3y survival (%)")
    ].iloc[0]
    assert math.isnan(row["computed"]) and pd.isna(row["within"])
    assert "horizon is 5 y, not 3y" in row["note"]


def test_flow_reads_the_all_sites_total_of_the_attrition_table(published):
    from pannet.cohort import ATTRITION_COLUMNS

    rows = []
    for step, crit, per_site in ((0, "assessed", (293, 213, 227)), (7, "included", (79, 53, 62))):
        for site, n in zip(
            ("uppsala", "gothenburg", "boston", "all"), (*per_site, sum(per_site)), strict=True
        ):
            split = (65, 129) if (crit, site) == ("included", "all") else (pd.NA, pd.NA)
            rows.append((step, crit, crit, site, 0, n, *split))
    att = pd.DataFrame(rows, columns=list(ATTRITION_COLUMNS))
    rep = replicate(published, attrition=att).set_index(["section", "item", "group"])
    assert rep.loc[("flow", "assessed", ""), "computed"] == 733
    assert rep.loc[("flow", "included", ""), "computed"] == 194
    assert rep.loc[("flow", "included", "SG"), "computed"] == 65
    assert rep.loc[("flow", "included", "non-SG"), "computed"] == 129
    assert (rep.loc["flow"]["source"].iloc[:4] == "cohort/attrition.parquet").all()


def test_large_cohort_fisher_rows_not_computed_with_a_reason(published, monkeypatch):
    """A cohort too large for the exact enumeration: the Fisher rows say so, no traceback."""
    import pannet.contingency as contingency

    def too_large(table):
        raise contingency.ContingencyError("table too large for the exact test")

    monkeypatch.setattr(contingency, "fisher_test", too_large)
    rep = replicate(published, analysis=_cohort(published, "before"), matched=None)
    row = rep[rep["item"] == "extra_abdominal_metastases p (fisher)"].iloc[0]
    assert math.isnan(row["computed"]) and pd.isna(row["within"])
    assert "too large" in row["note"]
    chi = rep[rep["item"] == "age_group p (chi2)"].iloc[0]
    assert not math.isnan(chi["computed"])


# ---------------------------------------------------------------------------
# On the demo run: every row of the flow and Table 1 before matching within tolerance,
# and each computed value equal to the one read from its artefact by other code.
def _demo(demo_run, rel):
    from pannet.io import read_parquet

    return read_parquet(demo_run / rel)


@pytest.mark.workflow
def test_demo_flow_and_table1_before_within_tolerance(demo_run):
    rep = _demo(demo_run, "report/replication.parquet")
    audit = _demo(demo_run, "report/publication_audit.parquet")
    flow = rep[rep["section"] == "flow"]
    assert set(flow["item"]) == {"assessed", "included", "matched_pairs"}
    assert flow["within"].all(), flow.to_string()
    t1 = rep[rep["section"] == "table1_before"]
    assert len(t1) > 60 and t1["computed"].notna().all()
    counts_and_p = t1[t1["kind"].isin(["count", "p"])]
    assert counts_and_p["within"].all(), counts_and_p[~counts_and_p["within"]].to_string()
    # The printed SMDs before matching cannot be reproduced from the printed counts (the
    # publication audit finds this from the numbers): a printed SMD outside tolerance must
    # be one the audit does not reproduce with the paper's formula.
    smd = t1[t1["kind"] == "smd"]
    not_reproduced = {
        (r.item, r.level)
        for r in audit[
            (audit["section"] == "table1_before_matching") & (audit["statistic"] == "smd")
        ].itertuples()
        if not r.reproduces
    }
    for r in smd[~smd["within"]].itertuples():
        var, level = r.item.removesuffix(" SMD").split("=", 1)
        assert (var, level) in not_reproduced, r.item


@pytest.mark.workflow
def test_demo_computed_values_equal_their_artefacts(demo_run):
    """Each computed value, read again from the artefact its ``source`` names, or from the
    pipeline's own table made from it (Table 1, Table 2, surgical outcomes, balance)."""
    rep = _demo(demo_run, "report/replication.parquet")
    att = _demo(demo_run, "cohort/attrition.parquet")
    matched = _demo(demo_run, "matching/matched.parquet")
    table1 = _demo(demo_run, "tables/table1.parquet")
    table2 = _demo(demo_run, "tables/table2.parquet").set_index("variable")
    surgery = _demo(demo_run, "tables/surgery.parquet")
    balance = _demo(demo_run, "matching/balance.parquet")
    for src in rep["source"].unique():
        assert (demo_run / src).exists(), src

    def row(section, item, group=""):
        r = rep[(rep["section"] == section) & (rep["item"] == item) & (rep["group"] == group)]
        assert len(r) == 1, (section, item, group)
        return r.iloc[0]

    # flow: the all-sites totals of the attrition table (not a site's row)
    tot = att[att["site"] == "all"].set_index("criterion")
    assert row("flow", "assessed")["computed"] == tot.loc["assessed", "remaining"]
    assert (
        row("flow", "assessed")["computed"]
        == att.loc[(att["criterion"] == "assessed") & (att["site"] != "all"), "remaining"].sum()
    )
    assert row("flow", "included")["computed"] == tot.loc["included", "remaining"]
    assert row("flow", "included", "SG")["computed"] == tot.loc["included", "sg"]
    assert row("flow", "included", "non-SG")["computed"] == tot.loc["included", "non_sg"]
    assert row("flow", "matched_pairs")["computed"] == matched["pair_id"].nunique()

    # Table 1: counts = the pipeline's Table 1 n columns, SMD = the balance table's
    t1 = table1[table1["row_type"] == "level"].set_index(["variable", "level"])
    bal = balance[balance["kind"] == "level"].set_index(["variable", "level"])
    for phase in ("before", "after"):
        sec = rep[(rep["section"] == f"table1_{phase}")]
        for r in sec[sec["kind"] == "count"].itertuples():
            var, level = r.item.split("=", 1)
            col = f"{phase}_{'sg' if r.group == 'SG' else 'nonsg'}_n"
            assert r.computed == t1.loc[(var, level), col], (phase, r.item, r.group)
        for r in sec[sec["kind"] == "smd"].itertuples():
            var, level = r.item.removesuffix(" SMD").split("=", 1)
            assert r.computed == pytest.approx(abs(bal.loc[(var, level), f"smd_{phase}"]))
    # p before matching: the test the paper names; Table 1 used it too where its rule did
    for r in rep[(rep["section"] == "table1_before") & (rep["kind"] == "p")].itertuples():
        var, test = r.item.split(" p (")
        first = t1.loc[var].iloc[0]
        if first["test"] == test.rstrip(")"):
            assert r.computed == pytest.approx(first["p_value"], rel=1e-12), var

    # survival: summary (fractions -> percent, years) and tests tables
    for pop, phase in (("all", "before_matching"), ("matched", "after_matching")):
        for ep, section in (("os", "overall_survival"), ("pfs", "progression_free_survival")):
            summ = _demo(demo_run, f"survival/{pop}_{ep}_summary.parquet").set_index("group")
            tests = _demo(demo_run, f"survival/{pop}_{ep}_tests.parquet").iloc[0]
            sec = rep[rep["section"] == f"{section}_{phase}"]
            assert len(sec) > 0
            for r in sec.itertuples():
                assert r.source.startswith(f"survival/{pop}_{ep}_"), r
                if r.item == "log-rank p":
                    assert r.computed == pytest.approx(tests["logrank_p"], rel=1e-12)
                    continue
                s = summ.loc[r.group]
                expected = {
                    "median (years)": s["median"],
                    "25th percentile (years)": s["q25"],
                    "75th percentile (years)": s["q75"],
                }.get(r.item)
                if expected is None:  # "<h>y survival [lower|upper CI] (%)"
                    h = float(r.item.split("y ", 1)[0])
                    assert s["horizon"] == h
                    col = (
                        "surv_lower"
                        if "lower" in r.item
                        else "surv_upper"
                        if "upper" in r.item
                        else "surv"
                    )
                    expected = 100 * s[col]
                assert r.computed == pytest.approx(expected, rel=1e-12), (section, phase, r.item)
    # the matched OS row at 5 years is the matched cohort's, not the unmatched one
    assert (
        row("overall_survival_after_matching", "5y survival (%)", "SG")["computed"]
        != row("overall_survival_before_matching", "5y survival (%)", "SG")["computed"]
    )

    # Table 2 counts: the pipeline's Table 2; surgery: the surgical-outcomes table (all 65)
    for r in rep[(rep["section"] == "table2") & (rep["kind"] == "count")].itertuples():
        col = "n_SG" if r.group == "SG" else "n_nonSG"
        assert r.computed == table2.loc[r.item, col], r.item
    surg = surgery[(surgery["population"] == "all") & (surgery["group"] == "SG")]
    n_sg = surg["total"].iloc[0]
    by = {("resection: " + lv): n for lv, n in zip(surg["level"], surg["n"], strict=True)}
    by |= {
        "clavien_dindo_ge2": surg.loc[surg["level"] == ">=2", "n"].item(),
        "clavien_dindo_ge3": surg.loc[surg["level"] == ">=3", "n"].item(),
        "mortality_90d": surg.loc[surg["measure"] == "mortality_90d", "n"].item(),
    }
    for r in rep[rep["section"] == "surgery"].itertuples():
        if r.kind == "percent":
            assert r.computed == pytest.approx(100 * by[r.item.removesuffix(" (%)")] / n_sg)
        else:
            assert r.computed == by[r.item], r.item
