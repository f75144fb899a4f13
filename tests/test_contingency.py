"""Group comparison tests (pannet.contingency) against R's chisq.test / fisher.test."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from pannet.contingency import (
    ContingencyError,
    chi2_test,
    choose_test,
    compare_groups,
    fisher_test,
    format_p,
)

AGE = [[18, 32], [21, 39], [20, 32], [6, 26]]  # Table 1 age group, before matching (SG, non-SG)
EXTRA = [[3, 12], [62, 117]]  # extra-abdominal metastases
LIVER = [[21, 12], [20, 40], [17, 68], [7, 9]]


def test_chi2_without_continuity_correction():
    # R: chisq.test(matrix(c(18,21,20,6,32,39,32,26), 4), correct = FALSE)
    #    X-squared = 3.90030677491858, df = 3, p-value = 0.272432373778524
    r = chi2_test(AGE)
    assert r["statistic"] == pytest.approx(3.90030677491858, rel=1e-12)
    assert r["df"] == 3
    assert r["p"] == pytest.approx(0.272432373778524, rel=1e-10)
    # R: chisq.test(matrix(c(3,62,12,117), 2), correct = FALSE)$p.value = 0.248648411969104
    assert chi2_test(EXTRA)["p"] == pytest.approx(0.248648411969104, rel=1e-10)
    # R: chisq.test(matrix(c(21,20,17,7,12,40,68,9), 4), correct = FALSE)$p.value = 9.74844001062026e-05
    assert chi2_test(LIVER)["p"] == pytest.approx(9.74844001062026e-05, rel=1e-10)


def test_fisher_2x2_and_rxc():
    # R: fisher.test(matrix(c(3,62,12,117), 2))$p.value = 0.393342740740229
    assert fisher_test(EXTRA)["p"] == pytest.approx(0.393342740740229, rel=1e-10)
    # R: fisher.test(matrix(c(11,39,4,46), 2))$p.value = 0.0905180045792176 (Table 2 interferon)
    assert fisher_test([[11, 39], [4, 46]])["p"] == pytest.approx(0.0905180045792176, rel=1e-10)
    # R: fisher.test(matrix(c(2,48,3,47), 2))$p.value = 1 (Table 2 PRRT)
    assert fisher_test([[2, 48], [3, 47]])["p"] == pytest.approx(1.0)
    # R: fisher.test(matrix(c(18,21,20,6,32,39,32,26), 4))$p.value = 0.256808928645876
    assert fisher_test(AGE)["p"] == pytest.approx(0.256808928645876, rel=1e-9)
    # R: fisher.test(matrix(c(53,9,3,108,13,8), 3))$p.value = 0.743642151728527
    assert fisher_test([[53, 108], [9, 13], [3, 8]])["p"] == pytest.approx(
        0.743642151728527, rel=1e-9
    )
    # R: fisher.test(matrix(c(2,0,3,3,4,1,1,5,2), 3))$p.value = 0.174550939256819
    assert fisher_test([[2, 3, 1], [0, 4, 5], [3, 1, 2]])["p"] == pytest.approx(
        0.174550939256819, rel=1e-9
    )
    # the publication audit's tables (pannet.pubaudit uses fisher_test):
    # R: fisher.test(matrix(c(21,20,17,7,12,40,68,9), 4), workspace = 2e7)$p.value
    #    = 9.94734809400059e-05 (liver metastases, a tiny p)
    assert fisher_test(LIVER)["p"] == pytest.approx(9.94734809400059e-05, rel=1e-8)
    # R: fisher.test(matrix(c(2,0,0,3,1,1,4,0), 2))$p.value = 0.0181818181818182 (zero cells)
    assert fisher_test([[2, 0, 1, 4], [0, 3, 1, 0]])["p"] == pytest.approx(
        0.0181818181818182, rel=1e-9
    )


def test_rule_auto_picks_fisher_below_five_expected():
    # expected counts of EXTRA: min 15 * 65 / 194 = 5.0258 -> chi-square
    r = compare_groups(EXTRA)
    assert r["test"] == "chi2" and r["expected_min"] == pytest.approx(15 * 65 / 194)
    # Charlson: 11 * 65 / 194 = 3.686 < 5 -> Fisher
    r = compare_groups([[53, 108], [9, 13], [3, 8]])
    assert r["test"] == "fisher" and r["p"] == pytest.approx(0.743642151728527, rel=1e-9)
    assert compare_groups(EXTRA, rule="fisher")["test"] == "fisher"
    assert compare_groups(EXTRA, expected_below=6)["test"] == "fisher"
    assert choose_test(4.99) == "fisher" and choose_test(5.0) == "chi2"


def test_compare_groups_from_unit_values():
    x = ["a"] * 5 + ["b"] * 7 + ["a"] * 9 + ["b"] * 2
    g = [1] * 12 + [0] * 11
    r = compare_groups(x=x, group=g)
    ref = compare_groups([[9, 5], [2, 7]])  # rows a, b; columns group 0, 1
    assert (r["test"], r["p"], r["expected_min"]) == (ref["test"], ref["p"], ref["expected_min"])


def test_empty_levels_are_dropped_and_bad_tables_rejected():
    assert chi2_test([[5, 6], [0, 0], [7, 2]])["p"] == pytest.approx(
        chi2_test([[5, 6], [7, 2]])["p"]
    )
    with pytest.raises(ContingencyError):
        chi2_test([[1, -1], [2, 3]])
    with pytest.raises(ContingencyError):
        compare_groups([[1, 2], [3, 4]], rule="yates")


def test_format_p():
    assert format_p(0.2724) == "0.272"
    assert format_p(9.7e-05) == "<0.001"
    assert format_p(0.1) == "0.100"
    assert format_p(float("nan")) == ""


@pytest.mark.reference
def test_random_tables_against_r(rscript, tmp_path):
    rng = np.random.default_rng(11)
    # r x 2 tables as Table 1 has them (up to n = 400), and small r x c tables for the
    # general enumeration (its cost grows with the number of tables)
    tables = [rng.integers(0, 80, size=(int(rng.integers(2, 6)), 2)) + 1 for _ in range(15)]
    tables += [rng.integers(0, 5, size=(int(rng.integers(3, 5)), 3)) + 1 for _ in range(10)]
    (tmp_path / "t.json").write_text(json.dumps([t.tolist() for t in tables]))
    code = f"""
library(jsonlite)
ts <- fromJSON("{tmp_path}/t.json", simplifyMatrix = TRUE, simplifyVector = TRUE)
ts <- if (is.list(ts)) ts else lapply(seq_len(dim(ts)[1]), function(i) ts[i, , ])
out <- lapply(ts, function(m) {{ m <- as.matrix(m); c(suppressWarnings(chisq.test(m, correct = FALSE))$p.value,
                                                 fisher.test(m, workspace = 2e7)$p.value) }})
writeLines(toJSON(out, digits = NA), "{tmp_path}/out.json")
"""
    (tmp_path / "r.R").write_text(code)
    proc = subprocess.run(
        [rscript, "--vanilla", str(tmp_path / "r.R")], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    ref = json.loads((tmp_path / "out.json").read_text())
    for t, (p_chi, p_fi) in zip(tables, ref, strict=True):
        assert chi2_test(t)["p"] == pytest.approx(p_chi, rel=1e-9, abs=1e-14)
        assert fisher_test(t)["p"] == pytest.approx(p_fi, rel=1e-7, abs=1e-12)
