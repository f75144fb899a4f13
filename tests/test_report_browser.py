"""The study report opens offline in headless Chromium and renders every section.

After the demo run, Chromium loads ``results/report/study_report.html`` with every host
name resolving nowhere (``--host-resolver-rules="MAP * ~NOTFOUND"``) and no background
networking; the HTML itself must name no http(s) resource. The screenshot is kept at
``results/test-evidence/study_report.png`` (kept as evidence; ``pannet audit`` skips that folder).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import _require

SECTIONS = (
    "diagnostics",
    "flow",
    "table1",
    "balance",
    "survival",
    "immortal",
    "table2",
    "surgery",
    "bootstrap",
    "replication",
    "audit",
    "methods",
)
EXTERNAL = re.compile(
    r"""(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//|@import|url\(\s*["']?\s*(?:https?:)?//""",
    re.I,
)


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if exe is None:
        _require("PANNET_REQUIRE_CHROMIUM", "chromium")
    return exe


def _chromium(exe: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={tmp}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.workflow
def test_report_renders_offline(demo_run, chromium, tmp_path):
    report = demo_run / "report" / "study_report.html"
    assert report.exists()
    html = report.read_text(encoding="utf-8")
    assert not EXTERNAL.search(html), EXTERNAL.search(html).group(0)
    for sid in SECTIONS:
        assert f'<section id="{sid}"' in html, sid
    # on the demo run every stage ran: each section has its artefacts, each figure is inlined,
    # and the survival sections hold estimates (not the Kaplan-Meier step tables)
    for sid in SECTIONS:
        assert f'<section id="{sid}" data-present="yes"' in html, sid
    for name in (
        "flow_diagram.png",
        "love_plot.png",
        "ps_overlap.png",
        "figure2_os.png",
        "figure_pfs.png",
        "figure_sensitivity.png",
        "ph_residuals.png",
    ):
        assert f"<small>({name})</small>" in html, name
    surv = html[html.index('<section id="survival"') : html.index('<section id="immortal"')]
    assert surv.count("5 y: ") == 6 and surv.count("3 y: ") == 6  # OS / PFS x 3 populations x 2
    assert surv.count("<tr") < 40
    imm = html[html.index('<section id="immortal"') : html.index('<section id="table2"')]
    assert imm.count("naive") >= 4

    dom = _chromium(chromium, tmp_path / "profile-dom", "--dump-dom", report.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    for sid in SECTIONS:
        assert re.search(rf'<section id="{sid}" data-present="(yes|no)"', dom.stdout), sid
    # every inlined image decoded (a broken data URI would still be in the DOM, so check
    # the bytes are a PNG header)
    for uri in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]{16})', html):
        import base64

        assert base64.b64decode(uri[:16])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "ERR_NAME_NOT_RESOLVED" not in dom.stderr

    shot = demo_run / "test-evidence" / "study_report.png"
    shot.parent.mkdir(exist_ok=True)
    shot.unlink(missing_ok=True)
    res = _chromium(
        chromium,
        tmp_path / "profile-shot",
        f"--screenshot={shot}",
        "--window-size=1280,4000",
        report.as_uri(),
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (4000, 1280)
    # the synthetic banner (or the title) is painted: the top of the page is not blank
    top = img[:60]
    assert (top[..., :3].std() > 0.05) or (top[..., 0] > 0.5).mean() > 0.2


@pytest.mark.workflow
def test_snakemake_report_of_the_demo_run(demo_run, tmp_path):
    """`snakemake --report` on the completed run: one offline file with every captioned
    figure and table, under its category."""
    import sys

    from conftest import ROOT

    out = tmp_path / "snakemake_report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--report", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = out.read_text(encoding="utf-8")
    for name in (
        "study_report.html",
        "figure2_os.png",
        "figure_pfs.png",
        "figure_sensitivity.png",
        "flow_diagram.png",
        "love_plot.png",
        "table1.html",
    ):
        assert name in html, name
    for category in ("Study report", "Tables", "Figures", "Cohort", "Matching"):
        assert category in html, category
