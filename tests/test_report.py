"""The study report: sections from the artefacts present, notes for the absent, offline HTML."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest

from pannet.config import PROJECT_ROOT
from pannet.io import read_provenance, write_parquet
from pannet.report import build_report
from pannet.report.inputs import classify, figure_role
from pannet.report.methods import methods_paragraphs

EXTERNAL = re.compile(
    r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?(?:https?:)?//""", re.I
)


@pytest.fixture(scope="module")
def config():
    import yaml

    return yaml.safe_load((PROJECT_ROOT / "config/config.yaml").read_text())


def _png(path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [1, 0])
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


@pytest.fixture
def artefacts(tmp_path):
    r = tmp_path / "results"
    w = {"rule": "test"}
    surv_summary = pd.DataFrame(
        [
            {
                "population": p,
                "endpoint": "os",
                "group": g,
                "n": 50,
                "events": 30,
                "median": 7.4,
                "q25": 4.1,
                "q75": 10.5,
                "horizon": 5.0,
                "surv": 0.654,
                "surv_lower": 0.515,
                "surv_upper": 0.793,
                "rmst": 6.1,
                "rmst_tau": 10.0,
            }
            for p in ("all", "matched")
            for g in ("SG", "non-SG")
        ]
    )
    surv_tests = pd.DataFrame(
        [
            {
                "population": p,
                "endpoint": "os",
                "logrank_p": 0.0431,
                "hr": 0.61,
                "hr_lower": 0.4,
                "hr_upper": 0.93,
                "cox_p": 0.02,
                "evalue_hr": 2.66,
                "evalue_ci": 1.36,
            }
            for p in ("all", "matched")
        ]
    )
    # the immortal-time contrast (results/survival/immortal_time.parquet): per population,
    # design and group
    immortal = pd.DataFrame(
        [
            {
                "population": p,
                "design": d,
                "time_zero": "metastasis date for all" if d == "naive" else "study",
                "group": g,
                "n": 50,
                "events": 30,
                "median": 8.9 if d == "naive" else 7.4,
                "median_lower": 6.0,
                "median_upper": 11.0,
                "horizon": 5.0,
                "surv": 0.7,
                "surv_lower": 0.55,
                "surv_upper": 0.85,
                "logrank_p": 0.01 if d == "naive" else 0.0431,
                "hr": 0.48 if d == "naive" else 0.61,
                "hr_lower": 0.3,
                "hr_upper": 0.77,
            }
            for p in ("all", "matched")
            for d in ("study", "naive")
            for g in ("SG", "non-SG")
        ]
    )
    paths = [
        write_parquet(surv_summary, r / "survival/os_summary.parquet", **w),
        write_parquet(surv_tests, r / "survival/os_tests.parquet", **w),
        write_parquet(immortal, r / "survival/immortal_time.parquet", **w),
        write_parquet(
            pd.DataFrame(
                {
                    "check": ["ph_matched_os", "balance"],
                    "population": ["matched", ""],
                    "endpoint": ["os", ""],
                    "passed": [False, True],
                    "detail": ["zph p 0.01", "ok"],
                }
            ),
            r / "diagnostics/diagnostics.parquet",
            **w,
        ),
        write_parquet(
            pd.DataFrame(
                {
                    "variable": ["sex", "sex"],
                    "level": ["Female", "Male"],
                    "SG_n": [21, 29],
                    "nonSG_n": [20, 30],
                    "p_value": [0.839, np.nan],
                    "smd": [2.0, -2.0],
                }
            ),
            r / "tables/table1.parquet",
            **w,
        ),
        _png(r / "survival/figure2_os.png"),
        _png(r / "matching/love_plot.png"),
    ]
    return paths


def test_sections_present_and_flagged(tmp_path, artefacts, config):
    out = build_report(artefacts, config, tmp_path / "report/study_report.html")
    html = out.read_text()
    assert not EXTERNAL.search(html)
    assert "SYNTHETIC DATA" in html and 'id="synthetic-banner"' in html
    for sid in ("diagnostics", "table1", "survival", "immortal", "balance"):
        assert re.search(rf'<section id="{sid}" data-present="yes"', html), sid
    for sid in ("table2", "surgery", "bootstrap", "replication", "flow", "audit"):
        assert re.search(rf'<section id="{sid}" data-present="no"', html), sid
    assert html.count("Omitted:") == 6
    # images inline, two of them
    assert html.count('src="data:image/png;base64,') == 2
    # the failing diagnostic is flagged beside the matched OS estimate only
    surv = html[html.index('<section id="survival"') : html.index('<section id="immortal"')]
    assert surv.count("FAILED: ph_matched_os") == 1
    assert "1 of 2 checks failed" in html
    # survival summaries: median (IQR), 5-year survival (CI), HR, E-value
    assert (
        "7.40 (4.10-10.50)" in surv
        and "5 y: 65.4 (51.5-79.3)" in surv
        and "0.61 (0.40-0.93)" in surv
    )
    assert "<0.001" not in surv and "0.043" in surv
    # the immortal-time contrast: both designs, the naive one's HR beside the study's
    imm = html[html.index('<section id="immortal"') : html.index('<section id="table2"')]
    assert "naive" in imm and "0.48 (0.30-0.77)" in imm and "0.61 (0.30-0.77)" in imm
    prov = read_provenance(out)
    assert prov["params"]["sections"]["table2"] is False
    assert len(prov["inputs"]) == len(artefacts)


def test_methods_follow_the_config(config):
    text = " ".join(methods_paragraphs(config))
    assert f"caliper of {config['matching']['caliper']} standard deviations" in text
    c2 = copy.deepcopy(config)
    c2["matching"]["caliper"] = 0.05
    c2["survival"]["conf_type"] = "log-log"
    c2["tables"]["test_rule"] = "fisher"
    t2 = " ".join(methods_paragraphs(c2))
    assert "caliper of 0.05 standard deviations" in t2
    assert "log(-log)" in t2 and "log(-log)" not in text
    assert "Fisher's exact test;" in t2
    for cov in config["matching"]["covariates"]:
        assert cov.replace("_", " ") in text


def test_nothing_present_gives_only_notes(tmp_path, config):
    cfg = copy.deepcopy(config)
    cfg["study"]["synthetic"] = False
    html = build_report([], cfg, tmp_path / "r.html").read_text()
    assert "SYNTHETIC DATA" not in html
    assert html.count('data-present="no"') == 11  # all but the methods
    assert "<img" not in html


def test_classify_by_path():
    inp = classify(
        [
            "results/tables/table1.parquet",
            "results/survival/x.parquet",
            "results/cohort/flow_diagram.png",
            "results/matching/ps_overlap.png",
            "results/survival/sensitivity_os.png",
            "a.png.prov.json",
        ]
    )
    assert inp.table1 is not None and len(inp.survival) == 1
    assert set(inp.figures) == {"flow", "overlap", "sensitivity"}
    assert figure_role("results/survival/pfs_km.png") == "pfs"
