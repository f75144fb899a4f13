"""The ``pannet`` command: audit a results folder, trace a number, export a run.

::

    pannet audit [results/] [--verbose] [--json]
    pannet trace <artefact> [--row R --column C] [--json]
    pannet export-crate DIR [--results results/] [--include-raw]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _audit(args) -> int:
    from pannet.audit import audit, format_findings

    results = Path(args.results)
    if not results.is_dir():
        print(f"pannet audit: no results folder {results}", file=sys.stderr)
        return 2
    findings = audit(results)
    if args.json:
        print(json.dumps([f.as_dict() for f in findings], indent=1))
    else:
        print(format_findings(findings, verbose=args.verbose))
    return 0 if all(f.status == "ok" for f in findings) else 1


def _trace(args) -> int:
    from pannet.trace import format_trace, trace

    art = Path(args.artefact).resolve()
    root = Path(args.root).resolve() if args.root else None
    if root is None:
        # The project root is the folder holding the artefact's results/ folder.
        root = next((p.parent for p in art.parents if p.name == args.results), Path.cwd())
    try:
        result = trace(art, row=args.row, column=args.column, root=root, results=args.results)
    except (KeyError, FileNotFoundError, ValueError) as exc:
        print(f"pannet trace: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1, default=str) if args.json else format_trace(result))
    return 0


def _crate(args) -> int:
    from pannet.crate import export_crate

    results = Path(args.results).resolve()
    try:
        dest = export_crate(
            args.dest, root=results.parent, results=results.name, include_raw=args.include_raw
        )
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"pannet export-crate: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {dest}/ro-crate-metadata.json")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pannet", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("audit", help="check every artefact: ok / stale / tampered / orphaned")
    a.add_argument("results", nargs="?", default="results", help="results folder")
    a.add_argument("-v", "--verbose", action="store_true", help="list the ok artefacts too")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    a.set_defaults(func=_audit)

    t = sub.add_parser("trace", help="the chain from an artefact (or cell) to the raw files")
    t.add_argument("artefact")
    t.add_argument("--row", help="'age <50' (Table-1-like), a 0-based position or col=value")
    t.add_argument("--column", help="column of the cell, e.g. 'SG before'")
    t.add_argument("--root", help="project root (default: the parent of results/)")
    t.add_argument("--results", default="results", help="name of the results folder")
    t.add_argument("--json", action="store_true", help="machine-readable output")
    t.set_defaults(func=_trace)

    c = sub.add_parser("export-crate", help="write the run as a Workflow Run RO-Crate")
    c.add_argument("dest", help="folder to write (empty or absent)")
    c.add_argument("--results", default="results", help="results folder")
    c.add_argument(
        "--include-raw", action="store_true", help="copy raw site exports into the crate"
    )
    c.set_defaults(func=_crate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
