"""Standardised mean differences (pannet.balance)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pannet.balance import balance_table, love_plot, overlap_plot, smd, smd_overall


def _indicator(k1, n1, k0, n0):
    x = np.r_[np.ones(k1), np.zeros(n1 - k1), np.ones(k0), np.zeros(n0 - k0)]
    t = np.r_[np.ones(n1), np.zeros(n0)]
    return x, t


def test_smd_binary_pooled_sd():
    # R: p1 <- 18/65; p0 <- 32/129; (p1 - p0) / sqrt((p1*(1-p1) + p0*(1-p0)) / 2)
    #    [1] 0.0656302879791069   (Table 1 age <50 before matching)
    assert smd(*_indicator(18, 65, 32, 129)) == pytest.approx(0.0656302879791069, rel=1e-12)
    # R: same with 19/65 vs 14/129 -> 0.471687601138771 (calendar period 2000-2009)
    assert smd(*_indicator(19, 65, 14, 129)) == pytest.approx(0.471687601138771, rel=1e-12)
    # sign: treated minus control
    assert smd(*_indicator(14, 129, 19, 65)) < 0
    x, t = _indicator(5, 50, 5, 50)
    assert smd(x, t) == 0.0
    assert smd(*_indicator(0, 10, 3, 10)) < 0


def test_smd_numeric():
    # R: x1 <- c(1,2,3,4,10); x0 <- c(2,3,5,7); (mean(x1)-mean(x0)) / sqrt((var(x1)+var(x0))/2)
    x = np.array([1, 2, 3, 4, 10, 2, 3, 5, 7], dtype=float)
    t = np.r_[np.ones(5), np.zeros(4)]
    #    [1] -0.0847173742087357
    assert smd(x, t) == pytest.approx(-0.0847173742087357, rel=1e-12)


def test_yang_dalton():
    # R: p1 <- c(18,21,20,6)/65; p0 <- c(32,39,32,26)/129; a1 <- p1[-1]; a0 <- p0[-1]
    #    S <- (diag(a1) - outer(a1,a1) + diag(a0) - outer(a0,a0)) / 2
    #    sqrt(t(a1-a0) %*% solve(S) %*% (a1-a0))  ->  0.317898662317677
    lv = ["<50", "50-59", "60-69", ">70"]
    x = np.repeat(lv * 2, [18, 21, 20, 6, 32, 39, 32, 26])
    t = np.r_[np.ones(65), np.zeros(129)]
    assert smd_overall(x, t, lv) == pytest.approx(0.317898662317677, rel=1e-10)
    # two levels: equals |per-level SMD|
    xb = np.where(_indicator(19, 65, 14, 129)[0] == 1, "a", "b")
    assert smd_overall(xb, t, ["a", "b"]) == pytest.approx(0.471687601138771, rel=1e-10)
    # reference level choice does not matter
    assert smd_overall(x, t, lv[::-1]) == pytest.approx(0.317898662317677, rel=1e-10)


def test_balance_table_layout_and_flags(tmp_path):
    rng = np.random.default_rng(3)
    n = 200
    before = pd.DataFrame(
        {
            "treated": rng.integers(0, 2, n),
            "age_group": rng.choice(["<50", "50-59", "60-69", ">70"], n),
            "sex": rng.choice(["Female", "Male"], n),
            "logit": rng.normal(size=n),
        }
    )
    after = before.iloc[:80]
    b = balance_table(before, after, ["age_group", "sex"], distance="logit", flag=10)
    assert b["kind"].tolist() == ["level"] * 4 + ["overall"] + ["level"] * 2 + ["numeric"]
    assert b.loc[b.kind == "level", "level"].tolist() == [
        "<50",
        "50-59",
        "60-69",
        ">70",
        "Female",
        "Male",
    ]
    assert (b["flag_after"] == (b["smd_after"].abs() > 10)).all()
    sex = b[b.variable == "sex"]["smd_before"].to_numpy()
    assert sex[0] == pytest.approx(-sex[1])
    x = (before["sex"] == "Female").astype(float)
    assert sex[0] == pytest.approx(100 * smd(x, before["treated"]))
    love_plot(b, tmp_path / "love.png")
    scores = before.assign(patient_key=[f"k{i}" for i in range(n)], ps=rng.random(n))
    overlap_plot(scores, scores["patient_key"][:80], tmp_path / "ov.png")
    for f in ("love.png", "ov.png"):
        assert (tmp_path / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
