"""Privacy over everything a run writes, the pseudonymisation key, and a missing key.

``test_privacy_ledger.py`` scans the cohort-stage artefacts. Here the scan covers the
whole demo run (``demo_run``): every file under ``results/`` (Parquet cells *and*
metadata, HTML, JSON, Markdown, LaTeX, the DOCX and RO-Crate zip members, PNG text
chunks, PDF streams), ``logs/`` and Snakemake's own ``.snakemake/log/``; plus the
messages of every failing bad-input case of the catalogue and the logs of a run that
stops. It looks for every identifier of the raw input (personnummer, MRN, full names,
birth dates as exported and ISO) and for the personnummer / MRN patterns.

A birth date written ISO is only searched for when it is *distinctive*: no clinical
date of the raw exports (diagnosis, surgery, death, treatment...) has the same text,
because the analysis legitimately holds those dates.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import ROOT
from test_privacy_ledger import _identifiers, demo_config, raw_tables  # noqa: F401

from pannet.pseudonym import DEMO_KEY, PseudonymKeyError, pseudonym, resolve_key

PATTERNS = {
    "personnummer": re.compile(r"(?<![\d-])(?:19|20)?\d{6}[-+]\d{4}(?!\d)"),
    "MRN": re.compile(r"\bBWH\d{7}\b"),
}
_DATE_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _clinical_dates(raw_tables) -> set[str]:  # noqa: F811
    """Every date text of the raw exports' non-birth date columns, as exported and ISO."""
    out: set[str] = set()
    for d, raw in raw_tables.values():
        for table in ("patients", "treatments"):
            df = raw[d[table]["file"]]
            for col, spec in d[table]["columns"].items():
                if spec.get("type") != "date" or col == "birth_date":
                    continue
                s = df[spec["source"]].astype(str).str.strip()
                out |= set(s)
                iso = pd.to_datetime(s, format=spec["date_format"], errors="coerce")
                out |= set(iso.dropna().dt.strftime("%Y-%m-%d"))
    return out


def _needles(raw_tables) -> re.Pattern:  # noqa: F811
    idents = _identifiers(raw_tables)
    clinical = _clinical_dates(raw_tables)
    idents = {x for x in idents if not (_DATE_ISO.match(x) and x in clinical)}
    idents |= {DEMO_KEY}
    assert len(idents) > 1000
    return re.compile("|".join(re.escape(x) for x in sorted(idents, key=len, reverse=True)))


def _parts(name: str, data: bytes):
    """(label, text) of a file and of whatever it contains (zip members, PDF/PNG text)."""
    low = name.lower()
    if low.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(io.BytesIO(data))
        meta = b"\n".join(k + b"=" + v for k, v in (table.schema.metadata or {}).items())
        yield name + " [metadata]", meta.decode("utf-8", "replace")
        df = table.to_pandas()
        yield name + " [columns]", "\n".join(map(str, df.columns))
        yield name + " [cells]", "\n".join(df.astype(str).to_numpy().ravel().tolist())
        return
    if data[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            for member in z.namelist():
                yield from _parts(f"{name}!{member}", z.read(member))
        return
    yield name, data.decode("utf-8", "replace")
    if low.endswith(".pdf"):
        for m in re.finditer(rb"stream\r?\n(.*?)endstream", data, flags=re.S):
            try:
                yield name + " [stream]", zlib.decompress(m.group(1)).decode("latin-1")
            except zlib.error:
                continue
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        pos = 8
        while pos + 8 <= len(data):
            n = int.from_bytes(data[pos : pos + 4], "big")
            kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
            if kind in (b"zTXt", b"iTXt") and b"\x00" in body:
                try:
                    yield (
                        name + f" [{kind.decode()}]",
                        zlib.decompress(body.split(b"\x00", 2)[-1].lstrip(b"\x00")).decode(
                            "utf-8", "replace"
                        ),
                    )
                except zlib.error:
                    pass
            pos += 12 + n


def scan(folders, needles: re.Pattern) -> tuple[list[str], int]:
    """Findings ("file: what") over every file of the folders; and the number of files."""
    found, n = [], 0
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            n += 1
            for label, text in _parts(str(path), path.read_bytes()):
                hit = needles.search(text)
                if hit:
                    found.append(f"{label}: raw identifier {hit.group(0)!r}")
                for what, pat in PATTERNS.items():
                    m = pat.search(text)
                    if m:
                        found.append(f"{label}: {what} pattern {m.group(0)!r}")
    return found, n


@pytest.mark.workflow
def test_nothing_a_demo_run_writes_holds_an_identifier_or_the_key(demo_run, raw_tables, root):  # noqa: F811
    needles = _needles(raw_tables)
    # the scanner itself finds identifiers where they are: in the raw exports (CSV, xlsx)
    control, _ = scan([root / "resources" / "demo"], needles)
    assert any("xlsx!" in f for f in control) and any("PANNET_DATA_RAW" in f for f in control)
    assert any("personnummer pattern" in f for f in control)
    folders = [demo_run, root / "logs", root / ".snakemake" / "log"]
    found, n = scan(folders, needles)
    assert not found, "\n".join(found[:20])
    kinds = {p.suffix for p in demo_run.rglob("*") if p.is_file()}
    # the scan saw the rendered forms, not just the tables
    assert {".parquet", ".html", ".png", ".json", ".docx"} <= kinds, kinds
    assert n >= 50


def test_error_messages_of_bad_inputs_hold_no_identifier(raw_tables, tmp_path):  # noqa: F811
    """Every stop message of the catalogue's structural cases is free of identifiers."""
    sys.path.insert(0, str(ROOT / "tests" / "bad_inputs"))
    import mutate

    from pannet.sites import StructuralError, load_dictionary, read_raw

    needles = _needles(raw_tables)
    cases = [
        yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "tests" / "bad_inputs" / "cases").glob("*.yaml"))
    ]
    messages = []
    for case in cases:
        if case["expect"]["outcome"] != "stop" or case["expect"].get("stage") == "policy":
            continue
        site = case["site"]
        d = load_dictionary(ROOT / "config" / "sites" / f"{site}.yaml")
        data = mutate.private_copy(ROOT / "resources" / "demo" / site, tmp_path / case["id"])
        mutate.apply(mutate.Export(site, data, d), case["mutations"])
        with pytest.raises(StructuralError) as err:
            read_raw(site, {"dictionary": d["_path"], "data_dir": str(data)}, d)
        messages.append(str(err.value))
    assert len(messages) >= 15
    for msg in messages:
        assert not needles.search(msg), msg
        for pat in PATTERNS.values():
            assert not pat.search(msg), msg


# --------------------------------------------------------------------------- the key
@pytest.mark.parametrize(
    "cfg, synthetic",
    [
        ({"key_env": "PANNET_PSEUDONYM_KEY", "key_file": None, "demo_key": True}, False),
        ({"key_env": "PANNET_PSEUDONYM_KEY", "key_file": None, "demo_key": False}, True),
        ({"key_env": "PANNET_PSEUDONYM_KEY", "key_file": None, "demo_key": False}, False),
    ],
    ids=["real-data-demo-key-refused", "demo-key-off", "nothing"],
)
def test_missing_key_outside_the_demo_is_a_clear_error(cfg, synthetic, monkeypatch):
    monkeypatch.delenv("PANNET_PSEUDONYM_KEY", raising=False)
    with pytest.raises(PseudonymKeyError) as err:
        resolve_key(cfg, synthetic=synthetic)
    msg = str(err.value)
    assert "PANNET_PSEUDONYM_KEY" in msg and "key_file" in msg, msg
    if cfg["demo_key"]:
        assert "study.synthetic is false" in msg


def test_key_file_inside_the_project_or_a_short_key_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("PANNET_PSEUDONYM_KEY", raising=False)
    inside = tmp_path / "project" / "key.txt"
    inside.parent.mkdir()
    inside.write_text("x" * 40)
    cfg = {"key_env": "PANNET_PSEUDONYM_KEY", "key_file": str(inside), "demo_key": False}
    with pytest.raises(PseudonymKeyError, match="inside the project folder"):
        resolve_key(cfg, synthetic=False, project_root=inside.parent)
    monkeypatch.setenv("PANNET_PSEUDONYM_KEY", "short")
    with pytest.raises(PseudonymKeyError, match="shorter than") as err:
        resolve_key({**cfg, "key_file": None}, synthetic=False)
    assert "short" not in str(err.value).replace("shorter", "")


def _project(dest: Path, **config_overrides) -> Path:
    dest.mkdir(parents=True)
    parts = ("Snakefile", "config", "workflow", "src", "resources", "pyproject.toml")
    for part in (*parts, "requirements.in", "requirements.lock"):
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    cfg_path = dest / "config" / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    for section, values in config_overrides.items():
        cfg[section].update(values)
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return dest


def _run(proj: Path, *targets: str, env: dict):
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", *targets],
        cwd=proj,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(proj / "src")},
        timeout=900,
    )


@pytest.mark.workflow
def test_a_real_key_is_used_and_never_written(tmp_path, raw_tables):  # noqa: F811
    """With study.synthetic false and a key in the environment: the key shapes the pseudonyms
    but appears in no artefact, log or provenance record (nor does the demo key)."""
    key = "reliability-" + secrets.token_hex(16)
    proj = _project(tmp_path / "p", study={"synthetic": False})
    env = {k: v for k, v in os.environ.items() if k != "PANNET_PSEUDONYM_KEY"}
    env["PANNET_PSEUDONYM_KEY"] = key
    targets = ["results/harmonised/uppsala/patients.parquet", "results/provenance/environment.json"]
    proc = _run(proj, *targets, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    forms = [key, key.encode().hex(), DEMO_KEY]
    needle = re.compile("|".join(re.escape(f) for f in forms))
    found, n = scan([proj / "results", proj / "logs", proj / ".snakemake" / "log"], needle)
    assert not found, found[:10]
    assert n >= 4
    from pannet.io import read_parquet
    from pannet.pseudonym import normalise_identifier

    p = read_parquet(proj / "results" / "harmonised" / "uppsala" / "patients.parquet")
    d, raw = raw_tables["uppsala"]
    first = raw[d["patients"]["file"]].iloc[0]
    norm = normalise_identifier(first[d["identifier"]["column"]], "personnummer", "uppsala")
    got = p.loc[p.source_row == first["source_row"], "patient_key"].iloc[0]
    assert got == pseudonym(norm, key.encode()) != pseudonym(norm, DEMO_KEY.encode())


@pytest.mark.workflow
def test_run_without_a_key_on_real_data_stops_clearly_and_leaks_nothing(tmp_path, raw_tables):  # noqa: F811
    proj = _project(tmp_path / "p", study={"synthetic": False})
    env = {k: v for k, v in os.environ.items() if k != "PANNET_PSEUDONYM_KEY"}
    proc = _run(proj, "results/harmonised/boston/patients.parquet", env=env)
    seen = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in seen, seen[-4000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("harmonise[boston]: ")]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "no pseudonymisation key" in lines[0] and "PANNET_PSEUDONYM_KEY" in lines[0]
    assert "study.synthetic is false" in lines[0]
    assert not (proj / "results" / "harmonised" / "boston" / "patients.parquet").exists()
    found, _ = scan(
        [proj / "results", proj / "logs", proj / ".snakemake" / "log"], _needles(raw_tables)
    )
    assert not found, found[:10]
