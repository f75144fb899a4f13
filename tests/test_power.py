"""Minimum detectable hazard ratio (Schoenfeld 1983) against R and its inverse."""

from __future__ import annotations

import math
import subprocess

import pytest

from pannet.power import events_required, mdrr


def test_closed_form_values():
    # 1:1, 60 events: exp(sqrt((1.959964 + 0.841621)^2 / (60 * 0.25))) = 2.061360
    assert mdrr(50, 50, 60) == pytest.approx(2.0613604817499573, rel=1e-12)
    # unbalanced groups need more events for the same MDRR
    assert mdrr(20, 80, 60) > mdrr(50, 50, 60)
    assert mdrr(50, 50, 0) == math.inf
    assert mdrr(0, 50, 10) == math.inf


def test_inverse_of_events_required():
    for hr, p in ((1.5, 0.5), (0.7, 0.3), (2.0, 0.2)):
        d = events_required(hr, p)
        n1 = round(p * 1000)
        assert mdrr(n1, 1000 - n1, d) == pytest.approx(max(hr, 1 / hr), rel=1e-9)
    # Schoenfeld's classic: HR 1.5, 1:1, alpha 0.05, power 0.8 -> 191 events
    assert math.ceil(events_required(1.5)) == 191


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha"):
        mdrr(10, 10, 5, alpha=1.5)
    with pytest.raises(ValueError, match="non-negative"):
        mdrr(10, 10, -1)


@pytest.mark.reference
def test_against_r(rscript):
    # R: exp(sqrt((qnorm(1 - a / 2) + qnorm(pw))^2 / (D * p * (1 - p))))
    cases = [(50, 50, 60, 0.05, 0.8), (120, 380, 210, 0.05, 0.8), (45, 45, 30, 0.01, 0.9)]
    exprs = ",".join(
        f"exp(sqrt((qnorm(1 - {a} / 2) + qnorm({pw}))^2 / ({d} * {n1 / (n1 + n0)} * (1 - {n1 / (n1 + n0)}))))"
        for n1, n0, d, a, pw in cases
    )
    out = subprocess.run(
        [rscript, "-e", f"cat(sprintf('%.15g', c({exprs})), sep = '\\n')"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for (n1, n0, d, a, pw), r in zip(cases, out, strict=True):
        assert mdrr(n1, n0, d, alpha=a, power=pw) == pytest.approx(float(r), rel=1e-12)
