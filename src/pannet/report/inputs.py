"""Which upstream artefacts the study report has, by their path in ``results/``.

The report is given every artefact the configured stages declare; it sorts them here by
path, so a stage that is not configured (or not built yet) is simply absent and its
section is omitted with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

FIGURE_SUFFIXES = (".png", ".svg", ".jpg", ".jpeg")

# figure role -> filename keywords (first match wins, checked in this order)
FIGURE_ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("diagnostics", ("ph_residual", "schoenfeld", "preference", "equipoise")),
    ("flow", ("flow", "attrition", "consort")),
    ("love", ("love", "balance", "smd")),
    ("overlap", ("overlap", "propensity", "ps_")),
    ("immortal", ("immortal", "naive")),
    ("sensitivity", ("sensitivity",)),
    ("pfs", ("pfs", "progression")),
    ("os", ("figure2", "fig2", "os", "km", "survival")),
)


@dataclass
class ReportInputs:
    """Upstream artefacts present for this run (paths; None / empty when absent)."""

    analysis: Path | None = None
    attrition: Path | None = None
    matched: Path | None = None
    balance: Path | None = None
    propensity: Path | None = None
    table1: Path | None = None
    table2: Path | None = None
    surgery: Path | None = None
    bootstrap: Path | None = None
    diagnostics: Path | None = None
    replication: Path | None = None
    audit: Path | None = None
    survival: list[Path] = field(default_factory=list)
    figures: dict[str, list[Path]] = field(default_factory=dict)
    other: list[Path] = field(default_factory=list)

    def all_paths(self) -> list[Path]:
        out = [v for k, v in vars(self).items() if isinstance(v, Path)]
        out += self.survival + self.other
        for v in self.figures.values():
            out += v
        return sorted(set(out))


def figure_role(path: str | os.PathLike) -> str:
    """The report section a figure belongs to, from its file name."""
    name = Path(path).name.lower()
    for role, keys in FIGURE_ROLES:
        if any(k in name for k in keys):
            return role
    return "other"


def classify(paths) -> ReportInputs:
    """Sort artefact paths into :class:`ReportInputs` (unknown files go to ``other``)."""
    r = ReportInputs()
    named = {
        ("cohort", "analysis"): "analysis",
        ("cohort", "attrition"): "attrition",
        ("matching", "matched"): "matched",
        ("matching", "balance"): "balance",
        ("matching", "propensity"): "propensity",
        ("tables", "table1"): "table1",
        ("tables", "table2"): "table2",
        ("tables", "surgery"): "surgery",
        ("bootstrap", "summary"): "bootstrap",
        ("diagnostics", "diagnostics"): "diagnostics",
        ("report", "replication"): "replication",
        ("report", "publication_audit"): "audit",
    }
    for raw in paths:
        p = Path(raw)
        if p.name.endswith(".prov.json"):
            continue
        if p.suffix.lower() in FIGURE_SUFFIXES:
            r.figures.setdefault(figure_role(p), []).append(p)
            continue
        if p.suffix != ".parquet":
            r.other.append(p)
            continue
        key = named.get((p.parent.name, p.stem))
        if key:
            setattr(r, key, p)
        elif p.parent.name == "survival":
            r.survival.append(p)
        else:
            r.other.append(p)
    r.survival.sort()
    for v in r.figures.values():
        v.sort()
    return r


def upstream_artefacts(candidates, rules, *, stage=None, suffix=None, name=None) -> list[str]:
    """The ``candidates`` paths some workflow rule makes (or that exist), filtered.

    Used by ``workflow/rules/report.smk``: the report consumes what the configured stages
    produce and omits the rest, so it never asks for a file no rule can make.

    Parameters
    ----------
    candidates : iterable of str
        Paths ``results/<stage>/<file>``.
    rules : iterable of snakemake Rule
        ``workflow.rules``.
    """
    rules = list(rules)
    out = []
    for p in candidates:
        pp = Path(p)
        if stage is not None and (len(pp.parts) < 2 or pp.parts[1] != stage):
            continue
        if suffix is not None and pp.suffix != suffix:
            continue
        if name is not None and pp.name != name:
            continue
        if pp.exists() or any(r.is_producer(p) for r in rules):
            out.append(p)
    return out
