"""On the demo data: every raw row accounted for, 194 (65/129) analysed, Table 1 as
published, and no personal identifier in any artefact after harmonisation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pannet.config import load_config
from pannet.sites import load_dictionary, read_raw

TARGETS = [
    "results/cohort/analysis.parquet",
    "results/cohort/flow_diagram.png",
    *[
        f"results/validation/{s}.{st}.html"
        for s in ("uppsala", "gothenburg", "boston")
        for st in ("raw", "cdm")
    ],
]


def run_cohort(project: Path, *targets: str, check: bool = True) -> subprocess.CompletedProcess:
    """Snakemake on ``project`` up to the cohort stage (not the whole study)."""
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *(targets or TARGETS), "--cores", "2", "--quiet"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"workflow failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def cohort_results(root) -> Path:
    """The demo run of validate/harmonise/cohort into results/ (a no-op when up to date)."""
    run_cohort(root)
    return root / "results"


@pytest.fixture(scope="session")
def demo_config(root) -> dict:
    return load_config(root / "config" / "config.yaml")


@pytest.fixture(scope="session")
def raw_tables(root, demo_config) -> dict[str, tuple[dict, dict]]:
    out = {}
    for site, cfg in demo_config["sites"].items():
        d = load_dictionary(root / cfg["dictionary"])
        out[site] = (d, read_raw(site, cfg, d))
    return out


@pytest.mark.workflow
def test_ledger_accounts_for_every_raw_row(cohort_results, raw_tables, root):
    led = pd.read_parquet(cohort_results / "cohort" / "ledger.parquet")
    expected = yaml.safe_load((root / "resources" / "demo" / "defects.yaml").read_text())[
        "expected"
    ]
    assert not led.duplicated(["site", "table", "source_row"]).any()
    total = 0
    for site, (d, raw) in raw_tables.items():
        for table in ("patients", "treatments"):
            rows = sorted(raw[d[table]["file"]]["source_row"])
            got = sorted(led.loc[(led.site == site) & (led.table == table), "source_row"])
            assert got == rows, (site, table)
        total += len(raw[d["patients"]["file"]])
    assert total == expected["raw_patient_rows"] == 733
    fates = led[led.table == "patients"]["fate"].value_counts().to_dict()
    assert fates == {
        "included": expected["included"],
        "excluded": expected["excluded"],
        "quarantined": expected["quarantined"],
        "merged_duplicate": expected["merged_duplicates"],
    }
    assert sum(fates.values()) == 733
    tfates = set(led.loc[led.table == "treatments", "fate"])
    assert tfates <= {"attached", "excluded", "quarantined", "merged_duplicate"}
    assert led["reason"].notna().all()


@pytest.mark.workflow
def test_attrition_matches_the_ledger_per_site(cohort_results):
    att = pd.read_parquet(cohort_results / "cohort" / "attrition.parquet")
    led = pd.read_parquet(cohort_results / "cohort" / "ledger.parquet")
    lp = led[led.table == "patients"]
    for site, g in att.groupby("site"):
        g = g.sort_values("step")
        rows = lp if site == "all" else lp[lp.site == site]
        assert g.iloc[0]["remaining"] == len(rows)
        assert g.iloc[-1]["remaining"] == (rows.fate == "included").sum()
        assert g["removed"].sum() + g.iloc[-1]["remaining"] == len(rows)
    final = att[(att.site == "all") & (att.criterion == "included")].iloc[0]
    assert (final["remaining"], final["sg"], final["non_sg"]) == (194, 65, 129)


@pytest.mark.workflow
def test_analysis_dataset_194_patients_and_table1_as_published(cohort_results, root):
    from pannet import cdm

    an = pd.read_parquet(cohort_results / "cohort" / "analysis.parquet")
    assert list(an.columns) == list(cdm.ANALYSIS_COLUMNS)
    assert an["group"].value_counts().to_dict() == {"non-SG": 129, "SG": 65}
    assert an["patient_key"].is_unique and an["patient_key"].is_monotonic_increasing
    pub = yaml.safe_load((root / "resources" / "published" / "kjaer2022.yaml").read_text())
    for var, spec in pub["table1"]["variables"].items():
        for level, (sg, non) in zip(spec["levels"], spec["before"], strict=True):
            got = (
                int(((an[var] == level) & (an.group == "SG")).sum()),
                int(((an[var] == level) & (an.group == "non-SG")).sum()),
            )
            assert got == (sg, non), (var, level)
    sg = an[an.group == "SG"]
    assert sg["resection_type"].value_counts().to_dict() == pub["surgery"]["resection_type"]
    assert int((sg["clavien_dindo"] >= 2).sum()) == pub["surgery"]["clavien_dindo_ge2"]["n"]
    assert int((sg["clavien_dindo"] >= 3).sum()) == pub["surgery"]["clavien_dindo_ge3"]["n"]
    assert int(sg["death_90d"].sum()) == pub["surgery"]["mortality_90d"]["n"]


def _identifiers(raw_tables) -> set[str]:
    """Every personnummer, MRN, full name and birth date (as exported and ISO) of the raw input."""
    from pannet.harmonise import personnummer_birth_dates

    found: set[str] = set()
    for d, raw in raw_tables.values():
        p = raw[d["patients"]["file"]]
        ident = p[d["identifier"]["column"]].str.strip()
        found |= set(ident[ident != ""])
        cols = d.get("personal_columns", [])
        if len(cols) == 2:  # first name + last name
            found |= set((p[cols[0]].str.strip() + " " + p[cols[1]].str.strip()).str.strip())
        else:
            for c in cols:
                found |= set(p[c].str.strip())
        birth = d["patients"]["columns"]["birth_date"]
        if "derive" in birth:
            dx = d["patients"]["columns"]["diagnosis_date"]
            dates = personnummer_birth_dates(
                ident, pd.to_datetime(p[dx["source"]], format=dx["date_format"], errors="coerce")
            )
        else:
            found |= set(p[birth["source"]].str.strip())
            dates = pd.to_datetime(p[birth["source"]], format=birth["date_format"], errors="coerce")
        found |= set(dates.dropna().dt.strftime("%Y-%m-%d"))
    return {x for x in found if x and len(x) >= 6}


def _artefact_texts(folder: Path):
    import pyarrow.parquet as pq

    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            meta = b" ".join(k + b"=" + v for k, v in (table.schema.metadata or {}).items())
            cells = table.to_pandas().astype(str).to_numpy().ravel().tolist()
            yield path, meta.decode("utf-8", "replace") + "\n" + "\n".join(cells)
        else:
            yield path, path.read_bytes().decode("utf-8", "replace")


@pytest.mark.workflow
def test_no_identifier_in_any_artefact(cohort_results, raw_tables, root):
    idents = _identifiers(raw_tables)
    # personnummer/MRN (732 persons), names and birth dates were all collected
    assert len(idents) > 732 + 500
    patterns = [re.compile(r"\b\d{6}[-+]\d{4}\b"), re.compile(r"\bBWH\d{7}\b")]
    scanned = 0
    for folder in (cohort_results, root / "logs"):
        if not folder.exists():
            continue
        for path, text in _artefact_texts(folder):
            scanned += 1
            leaked = sorted(x for x in idents if x in text)
            assert not leaked, f"{path}: raw identifiers {leaked[:5]}"
            for pat in patterns:
                assert not pat.search(text), f"{path}: identifier pattern {pat.pattern}"
    assert scanned >= 20
    for site in raw_tables:
        assert "birth_date" not in pd.read_parquet(
            cohort_results / "harmonised" / site / "patients.parquet"
        )
