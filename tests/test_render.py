"""Journal tables: each format holds the Parquet's numbers, reproducibly."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pannet import render
from pannet.io import read_provenance


def table1_fixture() -> pd.DataFrame:
    """A frame shaped like results/tables/table1.parquet (one row per variable level)."""
    rng = np.random.default_rng(np.random.SeedSequence(6))
    rows = []
    levels = {"age_group": ["<50", "50-59", "60-69", ">70"], "sex": ["Female", "Male"]}
    for var, lv in levels.items():
        for phase, (n1, n0) in (("before", (65, 129)), ("after", (50, 50))):
            c1 = rng.multinomial(n1, [1 / len(lv)] * len(lv))
            c0 = rng.multinomial(n0, [1 / len(lv)] * len(lv))
            for i, level in enumerate(lv):
                rows.append(
                    {
                        "phase": phase,
                        "variable": var,
                        "level": level,
                        "SG_n": int(c1[i]),
                        "SG_pct": 100 * c1[i] / n1,
                        "nonSG_n": int(c0[i]),
                        "nonSG_pct": 100 * c0[i] / n0,
                        "p_value": float(rng.uniform(0, 1)) if i == 0 else np.nan,
                        "smd": float(rng.normal(0, 20)),
                    }
                )
    rows[0]["p_value"] = 0.0004  # printed "<0.001"
    return pd.DataFrame(rows)


@pytest.fixture
def rendered(tmp_path):
    df = table1_fixture()
    src = tmp_path / "table1.parquet"
    df.to_parquet(src)
    paths = render.render_table(
        df, tmp_path / "out" / "table1", name="table1", synthetic=True, inputs=[src]
    )
    return df, {p.suffix: p for p in paths}


def _numbers(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", text)]


def test_all_formats_written_with_sidecars(rendered):
    df, paths = rendered
    assert set(paths) == {".html", ".docx", ".tex", ".md"}
    for p in paths.values():
        assert p.stat().st_size > 0
        prov = read_provenance(p)
        assert prov["rule"] == "render_tables"
        assert prov["output"]["path"] == str(p)
        assert not list(p.parent.glob(".*.tmp"))


def test_docx_holds_the_parquet_numbers(rendered):
    from docx import Document

    df, paths = rendered
    doc = Document(paths[".docx"])
    assert "SYNTHETIC DATA" in doc.paragraphs[0].text
    table = doc.tables[0]
    header = [c.text for c in table.rows[0].cells]
    body = [[c.text for c in r.cells] for r in table.rows[1:]]
    data_rows = [r for r in body if len(set(r)) > 1]  # group rows are one merged cell
    assert len(data_rows) == len(df)
    col = {h: i for i, h in enumerate(header)}
    for rec, cells in zip(df.to_dict("records"), data_rows, strict=True):
        assert cells[0] == rec["level"]
        assert int(cells[col["SG n"]]) == rec["SG_n"]
        assert int(cells[col["nonSG n"]]) == rec["nonSG_n"]
        assert float(cells[col["SG pct"]]) == pytest.approx(rec["SG_pct"], abs=0.05)
        assert float(cells[col["smd"]]) == pytest.approx(rec["smd"], abs=0.05)
        p = cells[col["p value"]]
        if np.isnan(rec["p_value"]):
            assert p == ""
        elif rec["p_value"] < 0.001:
            assert p == "<0.001"
        else:
            assert float(p) == pytest.approx(rec["p_value"], abs=0.0005)


def test_markdown_and_latex_carry_same_cells(rendered):
    df, paths = rendered
    md = paths[".md"].read_text()
    tex = paths[".tex"].read_text()
    disp, _, _ = render.display_frame(df)
    for cell in disp["SG pct"]:
        assert f"| {cell}" in md or f"|{cell}" in md.replace(" ", "")
        assert cell in tex
    assert "SYNTHETIC DATA" in md and "SYNTHETIC DATA" in tex
    assert r"\begin{table}" in tex and r"\textless{}0.001" in tex


def test_html_is_offline_and_reproducible(tmp_path, rendered):
    df, paths = rendered
    html = paths[".html"].read_text()
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html)
    assert "@import" not in html
    again = render.render_table(df, tmp_path / "again" / "table1", name="table1", synthetic=True)
    for p in again:
        assert p.read_bytes() == paths[p.suffix].read_bytes(), p.suffix


def test_no_banner_when_not_synthetic(tmp_path):
    df = table1_fixture()
    (md,) = render.render_table(df, tmp_path / "t", name="table1", formats=["md"])
    assert "SYNTHETIC" not in md.read_text()


def test_format_p():
    assert render.format_p(0.0004) == "<0.001"
    assert render.format_p(0.04) == "0.040"
    assert render.format_p(float("nan")) == ""


def _docx_rows(path):
    from docx import Document

    table = Document(path).tables[0]
    header = [c.text for c in table.rows[0].cells]
    rows = [[c.text for c in r.cells] for r in table.rows[1:]]
    return header, [r for r in rows if len(set(r)) > 1]  # group rows are one merged cell


def _n_pct(text):
    m = re.fullmatch(r"(\d+)(?: \((\d+\.\d)\))?", text)
    assert m, text
    return int(m.group(1)), (float(m.group(2)) if m.group(2) else None)


def assert_docx_matches_table1(docx_path, df):
    """Every count, percentage, p and SMD of table1.parquet is in the Word table."""
    header, rows = _docx_rows(docx_path)
    col = {h: i for i, h in enumerate(header)}
    df = df.sort_values("row").reset_index(drop=True)
    assert len(rows) == len(df)
    checked = 0
    for rec, cells in zip(df.to_dict("records"), rows, strict=True):
        assert cells[0] == rec["level"]
        for phase in ("before", "after"):
            for grp, head in (("sg", "SG"), ("nonsg", "non-SG")):
                n, pct = _n_pct(cells[col[f"{head} {phase}, n (%)"]])
                assert n == rec[f"{phase}_{grp}_n"]
                if not np.isnan(rec[f"{phase}_{grp}_pct"]):
                    assert pct == pytest.approx(rec[f"{phase}_{grp}_pct"], abs=0.05 + 1e-9)
                checked += 1
            smd = rec[f"{phase}_smd"]
            text = cells[col[f"SMD {phase}"]]
            assert (
                (text == "") if pd.isna(smd) else float(text) == pytest.approx(smd, abs=0.05 + 1e-9)
            )
        p = rec["p_value"]
        text = cells[col["p before"]]
        if rec["row_type"] == "level" and rec["first_in_variable"]:
            assert (
                text == "<0.001"
                if p < 0.001
                else float(text) == pytest.approx(p, abs=0.0005 + 1e-12)
            )
        else:
            assert text == ""
    assert checked == 4 * len(df)


def _cohort(n1, n0, seed):
    from pannet.cdm import TABLE1_LEVELS

    rng = np.random.default_rng(np.random.SeedSequence(seed))
    d = {"treated": [1] * n1 + [0] * n0}
    d["group"] = ["SG" if t else "non-SG" for t in d["treated"]]
    for var, lv in TABLE1_LEVELS.items():
        d[var] = list(rng.choice(lv, size=n1 + n0))
    return pd.DataFrame(d)


def test_real_table1_schema_renders_to_docx(tmp_path):
    from pannet.cdm import TABLE1_LEVELS
    from pannet.table1 import build_table1

    df = build_table1(_cohort(65, 129, 1), _cohort(50, 50, 2), list(TABLE1_LEVELS))
    paths = render.render_table(df, tmp_path / "table1", name="table1", synthetic=True)
    assert_docx_matches_table1(paths[1], df)
    md = paths[3].read_text()
    assert "SG before, n (%)" in md and "Charlson comorbidity index" in md


@pytest.mark.workflow
def test_demo_docx_table1_matches_parquet(demo_run):
    """After the demo run, the Word Table 1 holds the numbers of table1.parquet."""
    from pannet.io import read_parquet

    src = demo_run / "tables" / "table1.parquet"
    docx_path = demo_run / "report" / "tables" / "table1.docx"
    assert src.exists(), "the demo run made no results/tables/table1.parquet"
    assert docx_path.exists(), "the demo run made no results/report/tables/table1.docx"
    assert_docx_matches_table1(docx_path, read_parquet(src))
