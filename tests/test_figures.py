"""Kaplan-Meier figures: files, numbers at risk, reproducible bytes."""

from __future__ import annotations

import hashlib

import pandas as pd
from survival_data import make_cohort, make_matched

from pannet.figures import km_figure, n_at_risk
from pannet.survival import analyse_population


def _panels():
    df = make_cohort()
    out = []
    for name, pop in (("all", df), ("matched", make_matched(df))):
        r = analyse_population(pop, population=name, endpoint="os", horizon=5, cluster_column=None)
        out.append((r["steps"], r["tests"].iloc[0], f"{name} OS"))
    return df, out


def test_n_at_risk_matches_data():
    df, panels = _panels()
    steps = panels[0][0]
    for g in ("SG", "non-SG"):
        s = steps[steps["group"] == g]
        t = df.loc[df["group"] == g, "os_years"]
        at = [0, 2.5, 5, 7.5, 100]
        assert n_at_risk(s, at) == [int((t >= x).sum()) for x in at]


def test_km_figure_writes_png_pdf_reproducibly(tmp_path):
    _, panels = _panels()
    digests = []
    for i in range(2):
        png, pdf = tmp_path / f"f{i}.png", tmp_path / f"f{i}.pdf"
        km_figure(panels, png, pdf, xmax=15, tick_step=2.5, footnote="SYNTHETIC")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pdf.read_bytes()[:5] == b"%PDF-"
        digests.append(
            (
                hashlib.sha256(png.read_bytes()).hexdigest(),
                hashlib.sha256(pdf.read_bytes()).hexdigest(),
            )
        )
    assert digests[0] == digests[1]
    from matplotlib.image import imread

    img = imread(tmp_path / "f0.png")
    # 7 in at 300 dpi: journal double-column width
    assert img.shape[1] == 2100


def test_km_figure_single_panel(tmp_path):
    _, panels = _panels()
    km_figure(panels[:1], tmp_path / "a.png", tmp_path / "a.pdf")
    assert (tmp_path / "a.png").stat().st_size > 10_000
    assert isinstance(panels[0][0], pd.DataFrame)
