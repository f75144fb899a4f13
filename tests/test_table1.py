"""Table 1 (pannet.table1): layout, schema, tests used; the demo against the publication."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from pannet.table1 import TABLE1_SCHEMA, build_table1


@pytest.fixture(scope="module")
def published(root):
    return yaml.safe_load((root / "resources/published/kjaer2022.yaml").read_text())["table1"]


@pytest.fixture(scope="module")
def tables_config(root):
    return yaml.safe_load((root / "config/config.yaml").read_text())["tables"]


def _frame(pub, which):
    """Unit-level rows with exactly the published counts of every variable."""
    n1, n0 = pub["n"][which]
    cols = {"treated": np.r_[np.ones(n1, int), np.zeros(n0, int)]}
    for var, spec in pub["variables"].items():
        col = []
        for g in (0, 1):
            for level, counts in zip(spec["levels"], spec[which], strict=True):
                col += [level] * counts[g]
        cols[var] = col
    return pd.DataFrame(cols)


def _check_counts(t1, pub, which):
    n = t1[t1.row_type == "n"].iloc[0]
    assert [n[f"{which}_sg_n"], n[f"{which}_nonsg_n"]] == pub["n"][which]
    for var, spec in pub["variables"].items():
        rows = t1[t1.variable == var]
        assert rows["level"].tolist() == spec["levels"]
        got = rows[[f"{which}_sg_n", f"{which}_nonsg_n"]].to_numpy().tolist()
        assert got == spec[which], (var, which)


def test_published_counts_reproduce_the_printed_table(published, tables_config):
    b, a = _frame(published, "before"), _frame(published, "after")
    t1 = build_table1(
        b,
        a,
        list(published["variables"]),
        test_rule=tables_config["test_rule"],
        expected_below=tables_config["fisher_expected_below"],
        test_override=tables_config["test_override"],
    )
    _check_counts(t1, published, "before")
    _check_counts(t1, published, "after")
    first = t1[t1.first_in_variable & (t1.row_type == "level")].set_index("variable")
    for var, spec in published["variables"].items():
        assert first.loc[var, "test"] == spec["test"], var
        if var == "charlson_group":
            # printed 0.627; chisq.test(matrix(c(53,9,3,108,13,8),3), correct=FALSE) gives 0.685
            assert first.loc[var, "p_text"] == "0.685"
            continue
        printed = spec["p_before"]
        printed = printed if isinstance(printed, str) else f"{printed:.3f}"
        assert first.loc[var, "p_text"] == printed, var
    # age <50: "18 (27.7)" / "32 (24.8)" as printed
    age = t1[(t1.variable == "age_group") & (t1.level == "<50")].iloc[0]
    assert (age.before_sg, age.before_nonsg) == ("18 (27.7)", "32 (24.8)")
    assert age.before_sg_pct == pytest.approx(100 * 18 / 65)


def test_rule_and_override_are_recorded(published):
    b, a = _frame(published, "before"), _frame(published, "after")
    auto = build_table1(b, a, ["charlson_group", "extra_abdominal_metastases"])
    first = auto[auto.first_in_variable & (auto.row_type == "level")].set_index("variable")
    # expected counts 3.69 (< 5) and 5.03
    assert first.loc["charlson_group", ["test", "test_rule"]].tolist() == ["fisher", "auto"]
    assert first.loc["extra_abdominal_metastases", ["test", "test_rule"]].tolist() == [
        "chi2",
        "auto",
    ]
    assert first.loc["charlson_group", "expected_min"] == pytest.approx(11 * 65 / 194)
    over = build_table1(b, a, ["sex"], test_override={"sex": "fisher"})
    assert over.loc[1, ["test", "test_rule"]].tolist() == ["fisher", "override"]


def test_schema_is_the_documented_one(published):
    t1 = build_table1(_frame(published, "before"), _frame(published, "after"), ["sex", "age_group"])
    assert list(t1.columns) == list(TABLE1_SCHEMA)
    for col, (dtype, _) in TABLE1_SCHEMA.items():
        assert str(t1[col].dtype) == ("string" if dtype == "string" else dtype), col
    assert t1["row"].tolist() == list(range(len(t1)))
    assert t1.loc[0, "row_type"] == "n" and t1.loc[0, "before_sg_n"] == 65
    # SMD columns are |SMD| x 100; Yang-Dalton only for more than two levels
    assert (t1.loc[t1.row_type == "level", "before_smd"] >= 0).all()
    assert t1.loc[t1.variable == "sex", "before_smd_overall"].isna().all()
    assert t1.loc[t1.variable == "age_group", "before_smd_overall"].notna().all()


def test_values_outside_the_levels_are_named(published):
    b = _frame(published, "before")
    b.loc[3, "sex"] = "Unknown"
    with pytest.raises(ValueError, match="'sex' has values \\['Unknown'\\]"):
        build_table1(b, b, ["sex"])


@pytest.mark.workflow
def test_demo_table1(demo_run, published):
    """Demo: before matching equals the publication; after matching has ~50 pairs and SMDs."""
    from pannet.io import read_parquet

    t1 = read_parquet(demo_run / "tables" / "table1.parquet")
    _check_counts(t1, published, "before")
    n = t1[t1.row_type == "n"].iloc[0]
    assert n.after_sg_n == n.after_nonsg_n
    assert 45 <= n.after_sg_n <= 55
    lev = t1[t1.row_type == "level"]
    assert lev["after_smd"].notna().all() and np.isfinite(lev["after_smd"]).all()
    assert lev["after_sg"].str.fullmatch(r"\d+ \(\d+\.\d\)").all()
    pairs = read_parquet(demo_run / "matching" / "pairs.parquet")
    assert len(pairs) == n.after_sg_n
