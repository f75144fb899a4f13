"""The bad-export catalogue (tests/bad_inputs/cases/*.yaml): every defect ends where it says.

Each case applies one defect to a private copy of the demo exports and states the
outcome:

- ``stop``: the run stops with one message naming the site, the file, the column (and
  the row where there is one), the rule, and the fix - raised as
  :class:`pannet.sites.StructuralError` when the export is read, or
  :class:`pannet.validation.QuarantineLimitError` by the quarantine policy
  (``stage: policy``). Cases marked ``snakemake`` are also run through a real Snakemake
  job: the user sees the message and no Python traceback.
- ``quarantine``: the row goes to ``results/quarantine/<site>.parquet`` with its rule,
  column and (unless personal: ``<redacted>``) value, its ledger fate is ``quarantined``
  with that rule, and every raw row of every site is still in the ledger exactly once.
- ``normalised``: the value is cleaned (stray blanks, a declared missing token) and the
  row goes on as before; ``excluded``: a valid value that an eligibility criterion
  removes; ``accepted``: a harmless file-level difference (BOM, CRLF, an extra column)
  that changes nothing the pipeline reads.

Speed: the pannet functions run in process (great-expectations imported once). The
row-level cases of one site are planted together, each on its own row, in one copy of
the export ("the batch"), so each site's suites run once; the batch is compared with
the unmodified demo ("the baseline") so that every new quarantine row is explained by
a case. Structural cases only read the export (no suite), so each runs on its own copy.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bad_inputs"))
import mutate  # noqa: E402
from conftest import ROOT, copy_workflow  # noqa: E402

from pannet.config import load_config  # noqa: E402

CASES = {
    c["id"]: c
    for c in (
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((HERE / "bad_inputs" / "cases").glob("*.yaml"))
    )
}
DEMO = ROOT / "resources" / "demo"
SITES = ("uppsala", "gothenburg", "boston")
BATCH_OUTCOMES = ("quarantine", "normalised", "excluded")


def _cases(*outcomes: str) -> list[dict]:
    return [c for c in CASES.values() if c["expect"]["outcome"] in outcomes]


def _site_cfg(site: str, data_dir: Path) -> dict:
    return {
        "dictionary": str(ROOT / "config" / "sites" / f"{site}.yaml"),
        "data_dir": str(data_dir),
    }


def _dictionary(site: str) -> dict:
    from pannet.sites import load_dictionary

    return load_dictionary(ROOT / "config" / "sites" / f"{site}.yaml")


def _config(case: dict | None = None) -> dict:
    cfg = load_config(ROOT / "config" / "config.yaml")
    for section, values in ((case or {}).get("config") or {}).items():
        cfg[section] = {**cfg[section], **values}
    return cfg


@dataclass
class SiteRun:
    """Everything the per-site stages made for one site, in process."""

    raw_results: pd.DataFrame
    patients: pd.DataFrame
    treatments: pd.DataFrame
    quarantine: pd.DataFrame
    n_rows: dict


def run_site(site: str, data_dir: Path, work: Path) -> SiteRun:
    """validate_raw -> harmonise -> validate_cdm, as the workflow's scripts call them."""
    from pannet import validation
    from pannet.harmonise import harmonise_site
    from pannet.pseudonym import DEMO_KEY

    cfg = _site_cfg(site, data_dir)
    raw_results = validation.validate_raw_site(site, cfg, cfg["dictionary"])
    p, t, issues = harmonise_site(site, cfg, _dictionary(site), key=DEMO_KEY.encode())
    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, df in (("p", p), ("t", t), ("i", issues), ("r", raw_results)):
        paths[name] = work / f"{name}.parquet"
        df.to_parquet(paths[name])
    vcfg = _config()["validation"]
    _, quarantine, n_rows = validation.validate_cdm_site(
        site,
        cfg,
        cfg["dictionary"],
        patients=paths["p"],
        treatments=paths["t"],
        issues=paths["i"],
        raw_results=paths["r"],
        earliest_date=vcfg["earliest_date"],
        latest_date=vcfg["latest_date"],
    )
    return SiteRun(raw_results, p, t, quarantine, n_rows)


def cohort_ledger(runs: dict[str, SiteRun]) -> pd.DataFrame:
    from pannet.cohort import build_cohort

    tables = {s: (runs[s].patients, runs[s].treatments, runs[s].quarantine) for s in SITES}
    return build_cohort(tables, _config()["eligibility"]).ledger


@pytest.fixture(scope="session")
def baseline(tmp_path_factory) -> dict:
    """The unmodified demo through the per-site stages and the cohort merge."""
    work = tmp_path_factory.mktemp("baseline")
    runs = {s: run_site(s, DEMO / s, work / s) for s in SITES}
    return {"runs": runs, "ledger": cohort_ledger(runs)}


@pytest.fixture(scope="session")
def batch(tmp_path_factory, baseline) -> dict:
    """Per site: every row-level case planted in one copy of the export, then the stages."""
    out = {}
    for site in SITES:
        cases = [c for c in _cases(*BATCH_OUTCOMES) if c["site"] == site]
        work = tmp_path_factory.mktemp(f"batch-{site}")
        data = mutate.private_copy(DEMO / site, work / "export")
        ex = mutate.Export(site, data, _dictionary(site))
        where = {c["id"]: mutate.apply(ex, c["mutations"], baseline["ledger"]) for c in cases}
        rows_hit: dict[str, set] = {}
        for cid, w in where.items():
            for key, src in w.items():
                rows_hit.setdefault(f"{key.split(':')[0]}:{src}", set()).add(cid)
        clash = {k: v for k, v in rows_hit.items() if len(v) > 1}
        assert not clash, f"two catalogue cases plant a defect on the same row: {clash}"
        runs = dict(baseline["runs"])
        runs[site] = run_site(site, data, work / "run")
        out[site] = {"run": runs[site], "ledger": cohort_ledger(runs), "where": where, "ex": ex}
    return out


def _source_row(site_batch: dict, case: dict, table: str, selector, baseline) -> int:
    key = f"{table}:{selector}"
    w = site_batch["where"][case["id"]]
    if key in w:
        return w[key]
    return mutate.resolve(site_batch["ex"], table, selector, baseline["ledger"])


def _fate(ledger: pd.DataFrame, site: str, table: str, row: int) -> pd.Series:
    hit = ledger[(ledger.site == site) & (ledger.table == table) & (ledger.source_row == row)]
    assert len(hit) == 1, f"{site} {table} row {row}: {len(hit)} ledger rows"
    return hit.iloc[0]


# --------------------------------------------------------------------------- catalogue
def test_catalogue_covers_the_issue():
    """At least 25 distinct defects, over all three formats, every outcome represented."""
    assert len(CASES) >= 25
    assert {c["site"] for c in CASES.values()} == set(SITES)
    assert {c["expect"]["outcome"] for c in CASES.values()} >= {
        "stop",
        "quarantine",
        "normalised",
        "excluded",
        "accepted",
    }
    for c in CASES.values():
        assert c["defect"] and c["mutations"], c["id"]


# --------------------------------------------------------------------------- stop
def _assert_located_message(msg: str, case: dict) -> None:
    exp = case["expect"]
    assert f"site '{case['site']}'" in msg, msg
    for part in exp["message"]:
        assert part in msg, f"{part!r} not in: {msg}"
    if exp.get("column"):
        assert f"column '{exp['column']}'" in msg, msg
    if exp.get("row"):
        assert "row " in msg, msg
    assert "Traceback" not in msg


@pytest.mark.parametrize(
    "case",
    [c for c in _cases("stop") if c["expect"].get("stage") != "policy"],
    ids=lambda c: c["id"],
)
def test_structural_defect_stops_with_located_message(case, tmp_path):
    from pannet.sites import StructuralError, read_raw

    site = case["site"]
    data = mutate.private_copy(DEMO / site, tmp_path / site)
    mutate.apply(mutate.Export(site, data, _dictionary(site)), case["mutations"])
    with pytest.raises(StructuralError) as err:
        read_raw(site, _site_cfg(site, data), _dictionary(site))
    _assert_located_message(str(err.value), case)


@pytest.mark.parametrize(
    "case",
    [c for c in _cases("stop") if c["expect"].get("stage") == "policy"],
    ids=lambda c: c["id"],
)
def test_policy_stops_with_located_message(case, tmp_path, baseline):
    from pannet.validation import QuarantineLimitError, enforce_policy

    site = case["site"]
    data = mutate.private_copy(DEMO / site, tmp_path / site)
    mutate.apply(
        mutate.Export(site, data, _dictionary(site)), case["mutations"], baseline["ledger"]
    )
    run = run_site(site, data, tmp_path / "run")
    v = _config(case)["validation"]
    # the demo's own planted defects are in the quarantine too: judge only the new rows
    base = baseline["runs"][site].quarantine
    new = run.quarantine.merge(base, how="left", indicator=True)
    new = new[new["_merge"] == "left_only"].drop(columns="_merge")
    with pytest.raises(QuarantineLimitError) as err:
        enforce_policy(
            site,
            new.reset_index(drop=True),
            run.n_rows,
            on_invalid=v["on_invalid"],
            max_share=v["max_quarantine_share"],
        )
    _assert_located_message(str(err.value), case)


@pytest.mark.parametrize("case", _cases("accepted"), ids=lambda c: c["id"])
def test_harmless_difference_changes_nothing(case, tmp_path):
    from pannet.sites import read_raw, to_cdm

    site = case["site"]
    d = _dictionary(site)
    data = mutate.private_copy(DEMO / site, tmp_path / site)
    mutate.apply(mutate.Export(site, data, d), case["mutations"])
    got = to_cdm(site, read_raw(site, _site_cfg(site, data), d), d)
    want = to_cdm(site, read_raw(site, _site_cfg(site, DEMO / site), d), d)
    for g, w in zip(got[:2], want[:2], strict=True):
        pd.testing.assert_frame_equal(g, w)
    pd.testing.assert_frame_equal(got[2].drop(columns="file"), want[2].drop(columns="file"))


# --------------------------------------------------------------------------- rows
@pytest.mark.parametrize("case", _cases("quarantine"), ids=lambda c: c["id"])
def test_bad_row_is_quarantined_with_its_rule(case, batch, baseline):
    site = case["site"]
    b = batch[site]
    q = b["run"].quarantine
    for exp in case["expect"]["quarantine"]:
        src = _source_row(b, case, exp["table"], exp["row"], baseline)
        hit = q[(q.table == exp["table"]) & (q.source_row == src) & (q.rule == exp["rule"])]
        if exp.get("column"):
            hit = hit[hit.column == exp["column"]]
        assert len(hit) >= 1, (
            f"{case['id']}: no quarantine row {exp} at {exp['table']} row {src}; "
            f"rows there: {q[(q.table == exp['table']) & (q.source_row == src)].to_dict('records')}"
        )
        row = hit.iloc[0]
        # one quarantine row names site, file, row, column, value, rule and says what is wrong
        assert row["site"] == site
        assert (
            Path(row["file"]).name
            == Path(b["ex"].file_spec(b["ex"].table_role(exp["table"]))["path"]).name
        )
        for col in ("column", "rule", "message"):
            assert pd.notna(row[col]) and str(row[col]), (col, row.to_dict())
        if exp.get("value") is not None:
            assert row["value"] == exp["value"], row.to_dict()
        fate = _fate(b["ledger"], site, exp["table"], src)
        assert fate["fate"] == "quarantined", fate.to_dict()
        assert exp["rule"] in str(fate["reason"]).split(","), fate.to_dict()


@pytest.mark.parametrize("case", _cases("normalised"), ids=lambda c: c["id"])
def test_value_is_normalised(case, batch, baseline):
    site = case["site"]
    b = batch[site]
    exp = case["expect"]["harmonised"]
    src = _source_row(b, case, exp["table"], exp["row"], baseline)
    table = b["run"].patients if exp["table"] == "patients" else b["run"].treatments
    got = table.loc[table.source_row == src, exp["column"]]
    assert len(got) == 1
    if exp["value"] is None:
        assert pd.isna(got.iloc[0])
    else:
        assert got.iloc[0] == exp["value"]
    q = b["run"].quarantine
    assert q[(q.table == exp["table"]) & (q.source_row == src)].empty
    before = _fate(baseline["ledger"], site, exp["table"], src)["fate"]
    assert _fate(b["ledger"], site, exp["table"], src)["fate"] == before


@pytest.mark.parametrize("case", _cases("excluded"), ids=lambda c: c["id"])
def test_valid_value_is_excluded_by_eligibility(case, batch, baseline):
    b = batch[case["site"]]
    exp = case["expect"]["ledger"]
    src = _source_row(b, case, exp["table"], exp["row"], baseline)
    fate = _fate(b["ledger"], case["site"], exp["table"], src)
    assert (fate["fate"], fate["reason"]) == (exp["fate"], exp["reason"])
    q = b["run"].quarantine
    assert q[(q.table == exp["table"]) & (q.source_row == src)].empty


@pytest.mark.parametrize("site", SITES)
def test_ledger_still_adds_up(site, batch, baseline):
    """Every raw row of every site (appended rows included) is in the ledger exactly once."""
    b = batch[site]
    led = b["ledger"]
    for s in SITES:
        run = b["run"] if s == site else baseline["runs"][s]
        for table in ("patients", "treatments"):
            got = led[(led.site == s) & (led.table == table)]["source_row"].astype(int)
            assert not got.duplicated().any(), (s, table)
            if s == site:
                want = {r + 1 for r in b["ex"].table_rows(table)}
            else:
                want = set(getattr(run, table)["source_row"].astype(int))
            assert set(got) == want, (s, table, sorted(set(got) ^ want)[:10])


@pytest.mark.parametrize("site", SITES)
def test_every_new_quarantine_row_is_explained(site, batch, baseline):
    """The batch quarantines nothing beyond the baseline and the rows the cases hit."""
    b = batch[site]
    targeted = {(k.split(":")[0], src) for w in b["where"].values() for k, src in w.items()}
    base = baseline["runs"][site].quarantine
    base_cells = set(zip(base.table, base.source_row.astype(int), base.rule, strict=True))
    q = b["run"].quarantine
    new = [
        (t, int(r), rule)
        for t, r, rule in zip(q.table, q.source_row, q.rule, strict=True)
        if (t, int(r), rule) not in base_cells
    ]
    # a defect in a patient row's key cuts its treatments loose (rule unknown_patient)
    bp, bt = baseline["runs"][site].patients, baseline["runs"][site].treatments
    keys = set(
        bp.loc[bp.source_row.isin([r for t, r in targeted if t == "patients"]), "patient_key"]
    )
    targeted |= {("treatments", int(r)) for r in bt.loc[bt.patient_key.isin(keys), "source_row"]}
    unexplained = sorted({n for n in new if (n[0], n[1]) not in targeted})
    assert not unexplained, unexplained


# --------------------------------------------------------------------------- snakemake


SNAKEMAKE_CASES = [c for c in _cases("stop") if c["expect"].get("snakemake")]


@pytest.mark.workflow
@pytest.mark.parametrize("case", SNAKEMAKE_CASES, ids=lambda c: c["id"])
def test_snakemake_run_stops_with_one_message_and_no_traceback(case, tmp_path, baseline):
    site = case["site"]
    proj = copy_workflow(tmp_path / "project")
    data = proj / "resources" / "demo" / site
    mutate.apply(
        mutate.Export(site, data, _dictionary(site)), case["mutations"], baseline["ledger"]
    )
    if case.get("config"):
        cfg = yaml.safe_load((proj / "config" / "config.yaml").read_text(encoding="utf-8"))
        for section, values in case["config"].items():
            cfg[section].update(values)
        (proj / "config" / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    stage = case["expect"]["snakemake"]
    target = {
        "validate_raw": f"results/validation/{site}.raw.parquet",
        "validate_cdm": f"results/quarantine/{site}.parquet",
    }[stage]
    env = {**os.environ, "PYTHONPATH": str(proj / "src")}
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", target],
        cwd=proj,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    seen = proc.stdout + proc.stderr
    assert proc.returncode != 0, seen[-3000:]
    assert "Traceback" not in seen, seen[-6000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(f"{stage}[{site}]: ")]
    assert len(lines) == 1, proc.stderr[-4000:]
    _assert_located_message(lines[0], case)
    log = (proj / "logs" / stage / f"{site}.log").read_text(encoding="utf-8")
    assert "Traceback" not in log and "Fix" in log, log[-3000:]
    # nothing half-made is left for a later step
    assert not (proj / target).exists()
