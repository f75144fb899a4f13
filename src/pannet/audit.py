"""The manifest of a run and the audit of a results folder against it.

The manifest (``results/provenance/manifest.parquet``) lists every artefact the workflow's
final targets depend on, with its SHA-256. It is built by following the provenance
records back from the targets, so a file in ``results/`` that no current target reaches
is, by definition, not produced by the current workflow.

:func:`audit` classifies each artefact:

``ok``
    its bytes match the manifest and every input it recorded is unchanged;
``stale``
    an input (a file, a ``pannet`` module it imported, or the environment) changed since
    it was made, or an artefact upstream of it is not ok: a rerun would remake it;
``tampered``
    its own bytes differ from the manifest (or from its sidecar), or it is gone;
``orphaned``
    not produced by the current workflow: not in the manifest, made by a rule that no
    longer exists, or one of its recorded inputs is gone.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pannet.io import SIDECAR_SUFFIX, read_provenance
from pannet.io import sha256_file as _sha256_cached

MANIFEST = "results/provenance/manifest.parquet"
ENVIRONMENT = "results/provenance/environment.json"
MANIFEST_COLUMNS = ("path", "kind", "sha256", "bytes", "rule", "inputs")
STATUSES = ("ok", "stale", "tampered", "orphaned")
# Files the test suite keeps as evidence of a check (e.g. the report's screenshot): not
# workflow artefacts, so never orphans.
EVIDENCE_DIR = "test-evidence"
# Modules every step imports for provenance; their edits change metadata, not results,
# and Snakemake does not rerun for them (pannet.deps ignores them too).
_METADATA_MODULES = frozenset({"pannet", "pannet.io", "pannet.provenance", "pannet.deps"})


def sha256_file(path) -> str:
    """Hash the bytes now on disk (no cache: an audit trusts nothing remembered)."""
    return _sha256_cached(path, cache=False)


def _kind(path: Path) -> str:
    if path.suffix == ".parquet":
        return "parquet"
    if path.name.endswith(SIDECAR_SUFFIX):
        return "sidecar"
    if path.with_name(path.name + SIDECAR_SUFFIX).exists():
        return "rendered"
    return "file"


def _safe_provenance(path: Path) -> dict[str, Any]:
    try:
        return read_provenance(path)
    except Exception:  # noqa: BLE001 - a damaged file has no readable record
        return {}


def _under(path: str, folder: str) -> bool:
    return Path(path).parts[:1] == Path(folder).parts[:1]


def collect_artefacts(
    targets: Iterable[str | os.PathLike], root: str | os.PathLike = ".", results: str = "results"
) -> list[dict[str, Any]]:
    """Every artefact under ``results`` that ``targets`` depend on, as manifest rows.

    Follows recorded inputs, sidecars and the other outputs of each job (a job's outputs
    are made together, so one of them being needed makes all of them part of the run).

    Parameters
    ----------
    targets : iterable of paths
        The final targets of the workflow (files or directories), relative to ``root``.
    root : path
        The project root: recorded paths are relative to it.
    results : str
        The results folder, relative to ``root``.
    """
    root = Path(root)
    queue = [Path(os.path.normpath(t)).as_posix() for t in targets]
    rows: dict[str, dict[str, Any]] = {}
    while queue:
        rel = queue.pop()
        if rel in rows or not _under(rel, results):
            continue
        p = root / rel
        if p.is_dir():
            queue.extend(f.relative_to(root).as_posix() for f in p.rglob("*") if f.is_file())
            continue
        if not p.exists():
            continue
        kind = _kind(p)
        record: dict[str, Any] = {}
        if kind == "parquet":
            record = _safe_provenance(p)
        elif kind == "rendered":
            record = _safe_provenance(p)
            queue.append(rel + SIDECAR_SUFFIX)
        elif kind == "sidecar":
            record = json.loads(p.read_text())
            queue.append(rel[: -len(SIDECAR_SUFFIX)])
        inputs = record.get("inputs", [])
        queue.extend(i["path"] for i in inputs)
        queue.extend(record.get("job", {}).get("outputs", []))
        rows[rel] = {
            "path": rel,
            "kind": kind,
            "sha256": sha256_file(p),
            "bytes": p.stat().st_size,
            "rule": record.get("rule"),
            "inputs": json.dumps(inputs, sort_keys=True),
        }
    return [rows[k] for k in sorted(rows)]


def build_manifest(
    targets: Iterable[str | os.PathLike],
    output: str | os.PathLike = MANIFEST,
    root: str | os.PathLike = ".",
    results: str = "results",
) -> Path:
    """Write the manifest Parquet of everything ``targets`` depend on."""
    import pandas as pd

    from pannet.io import write_parquet

    targets = [os.fspath(t) for t in targets]
    rows = collect_artefacts(targets, root=root, results=results)
    df = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS)).astype(
        {"path": "string", "kind": "string", "sha256": "string", "rule": "string"}
    )
    df["bytes"] = df["bytes"].astype("int64")
    return write_parquet(
        df,
        output,
        rule="manifest",
        inputs=targets,
        params={"targets": sorted(targets), "results": results},
    )


@dataclass
class Finding:
    """The audit verdict on one artefact."""

    path: str
    status: str
    reasons: list[str] = field(default_factory=list)
    rule: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status,
            "rule": self.rule,
            "reasons": self.reasons,
        }


def workflow_rules(root: str | os.PathLike) -> set[str] | None:
    """Names of the rules in the workflow at ``root`` (None when it has no Snakefile)."""
    root = Path(root)
    files = [root / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    files = [f for f in files if f.exists()]
    if not files:
        return None
    pattern = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
    names = {"manifest"}
    for f in files:
        names.update(pattern.findall(f.read_text(encoding="utf-8")))
    return names


def _module_file(root: Path, module: str) -> Path | None:
    parts = module.split(".")
    base = root / "src" / Path(*parts)
    for cand in (base / "__init__.py", base.with_suffix(".py")):
        if cand.exists():
            return cand
    return None


def audit(results: str | os.PathLike = "results") -> list[Finding]:
    """Check every artefact of a results folder against the manifest and its inputs.

    Parameters
    ----------
    results : path
        The results folder; its parent is the project root that recorded paths are
        relative to.

    Returns
    -------
    list of Finding
        One per artefact (and one per file in ``results`` the manifest does not list),
        sorted by path.
    """
    results = Path(results).resolve()
    root = results.parent
    res_name = results.name
    manifest_path = root / res_name / "provenance" / "manifest.parquet"
    manifest_rel = manifest_path.relative_to(root).as_posix()
    if not manifest_path.exists():
        return [Finding(manifest_rel, "orphaned", ["no manifest: run the workflow first"])]
    from pannet.io import read_parquet

    manifest = read_parquet(manifest_path)
    entries = {r["path"]: r for r in manifest.to_dict("records")}
    rules = workflow_rules(root)
    env_fp = None
    env_file = root / res_name / "provenance" / "environment.json"
    if env_file.exists():
        try:
            env_fp = json.loads(env_file.read_text()).get("fingerprint")
        except json.JSONDecodeError:
            env_fp = None

    own: dict[str, Finding] = {}
    deps: dict[str, list[str]] = {}
    for rel, entry in entries.items():
        f = Finding(rel, "ok", rule=entry.get("rule"))
        own[rel] = f
        p = root / rel
        if not p.exists():
            f.status = "tampered"
            f.reasons.append("listed in the manifest but missing")
            continue
        if sha256_file(p) != entry["sha256"]:
            f.status = "tampered"
            f.reasons.append("its bytes differ from the manifest's SHA-256")
        kind = entry["kind"]
        record = {}
        if kind in ("parquet", "rendered"):
            record = _safe_provenance(p)
        elif kind == "sidecar":
            try:
                record = json.loads(p.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                record = {}
        if kind == "rendered" and record.get("output", {}).get("sha256") not in (
            None,
            sha256_file(p),
        ):
            f.status = "tampered"
            f.reasons.append("its bytes differ from the SHA-256 in its sidecar")
        if kind in ("parquet", "rendered", "sidecar") and not record and f.status == "ok":
            f.status = "tampered"
            f.reasons.append("its provenance record is missing or unreadable")
        if f.status == "tampered":
            continue
        if rules is not None and record.get("rule") and record["rule"] not in rules:
            job_rule = record.get("job", {}).get("rule")
            if job_rule not in rules:
                f.status = "orphaned"
                f.reasons.append(f"made by rule {record['rule']!r}, not in the current workflow")
        deps[rel] = []
        for inp in record.get("inputs", []):
            ip = root / inp["path"]
            if not ip.exists():
                f.status = "orphaned"
                f.reasons.append(f"input {inp['path']} is gone")
            elif sha256_file(ip) != inp["sha256"]:
                if f.status == "ok":
                    f.status = "stale"
                f.reasons.append(f"input {inp['path']} changed since it was made")
            if inp["path"] in entries:
                deps[rel].append(inp["path"])
        for module, digest in record.get("code", {}).get("modules", {}).items():
            if module in _METADATA_MODULES:
                continue
            mf = _module_file(root, module)
            if mf is None or sha256_file(mf) != digest:
                if f.status == "ok":
                    f.status = "stale"
                f.reasons.append(f"code of {module} changed since it was made")
        fp = record.get("environment", {}).get("fingerprint")
        if env_fp and fp and fp != env_fp:
            if f.status == "ok":
                f.status = "stale"
            f.reasons.append("made in another environment than environment.json records")

    # An artefact made from a not-ok one would be remade by a rerun: stale too.
    def settle(rel: str, stack: frozenset[str] = frozenset()) -> str:
        f = own[rel]
        if f.status != "ok" or rel in stack:
            return f.status
        for d in deps.get(rel, []):
            if settle(d, stack | {rel}) != "ok":
                f.status = "stale"
                f.reasons.append(f"upstream artefact {d} is not ok")
                break
        return f.status

    for rel in sorted(own):
        settle(rel)

    findings = dict(own)
    for p in sorted((root / res_name).rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        if rel in findings or rel == manifest_rel:
            continue
        if p.relative_to(root / res_name).parts[0] == EVIDENCE_DIR:
            continue
        findings[rel] = Finding(
            rel, "orphaned", ["not in the manifest: not produced by the current workflow"]
        )
    # The manifest itself: stale when a target changed after it was written.
    mrec = _safe_provenance(manifest_path)
    mf = Finding(manifest_rel, "ok", rule="manifest")
    for inp in mrec.get("inputs", []):
        ip = root / inp["path"]
        if not ip.exists() or sha256_file(ip) != inp["sha256"]:
            mf.status = "stale"
            mf.reasons.append(f"target {inp['path']} changed or vanished since it was written")
    findings[manifest_rel] = mf
    return [findings[k] for k in sorted(findings)]


def format_findings(findings: list[Finding], verbose: bool = False) -> str:
    """One line per artefact (only the not-ok ones unless ``verbose``) and a summary."""
    lines = []
    for f in findings:
        if f.status == "ok" and not verbose:
            continue
        lines.append(f"{f.status:<9} {f.path}")
        lines.extend(f"          - {r}" for r in f.reasons)
    counts = {s: sum(f.status == s for f in findings) for s in STATUSES}
    lines.append(f"{len(findings)} artefacts: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
