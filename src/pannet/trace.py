"""Where does a number come from: the chain from an artefact back to the raw site files.

:func:`trace` follows the provenance records (each artefact's inputs) from an artefact
back to files outside ``results/`` (the raw site exports, the data dictionaries, the
code), and reports per step the rule, code version, parameters and seed.

Row lineage follows two column conventions of the artefacts:

- ``patient_key``: a table with it can be narrowed to the patients selected downstream;
- ``site`` + ``source_row``: the 1-based data row of the site's raw file a row came from
  (the harmonised tables keep them), which ties a row to a line of a raw export.

An aggregated table such as Table 1 (``variable``/``level`` rows, one column per group
and population) is resolved to the patients a cell counts, either from a
``cell_lineage`` entry in its provenance ``extra`` (see :func:`resolve_cell`) or, failing
that, from its inputs' ``group`` column and Table 1 category columns. Raw rows are named
by number only: printing them would carry local identifiers past harmonisation.
"""

from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from pannet.io import SIDECAR_SUFFIX, read_provenance

RAW_DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xls", ".json", ".sav", ".dta", ".xml")


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9<>=.+-]", "", str(text).lower())


def _is_artefact(path: str, results: str) -> bool:
    return Path(path).parts[:1] == (results,)


def _is_code(path: str) -> bool:
    parts = Path(path).parts
    return path.endswith(".py") or parts[:1] in (("src",), ("workflow",))


def _record(root: Path, rel: str) -> dict[str, Any]:
    p = root / rel
    if not p.exists():
        return {}
    try:
        return read_provenance(p) if not rel.endswith(SIDECAR_SUFFIX) else json.loads(p.read_text())
    except Exception:  # noqa: BLE001 - a damaged artefact is reported without a record
        return {}


def _columns(root: Path, rel: str) -> list[str]:
    if not rel.endswith(".parquet") or not (root / rel).exists():
        return []
    import pyarrow.parquet as pq

    return list(pq.read_schema(root / rel).names)


def _read(root: Path, rel: str, columns: list[str]):
    from pannet.io import read_parquet

    return read_parquet(root / rel, columns=columns)


def _tokens(text: str) -> frozenset[str]:
    t = re.sub(r"non[\s_-]*sg", "nonsg", str(text).lower())
    return frozenset(x for x in re.split(r"[^a-z0-9]+", t) if x)


def _match_row(df, row: str) -> int:
    """Index of the Table-1-like row named by ``row`` ('age <50', 'age_group=<50', '3')."""
    if row.strip().isdigit():
        return int(row)
    spec = _norm(row)
    labels = df["label"] if "label" in df.columns else df["variable"]
    hits = []
    for i, (var, lab, lev) in enumerate(zip(df["variable"], labels, df["level"], strict=True)):
        v, lb, lv = _norm(var), _norm(lab), _norm(lev)
        if not lv:
            continue
        if spec in (v + lv, f"{v}={lv}", f"{v}:{lv}", lb + lv):
            return i
        head = spec[: -len(lv)].rstrip("=:") if spec.endswith(lv) else None
        if head is not None and (
            head == "" or any(x.startswith(head) or head.startswith(x) for x in (v, lb))
        ):
            hits.append(i)
    if len(hits) == 1:
        return hits[0]
    labels = [f"{v} {lv}" for v, lv in zip(df["variable"], df["level"], strict=True)]
    raise KeyError(
        f"row {row!r} names {'no' if not hits else 'more than one'} row of the table; "
        f"rows are: {labels}"
    )


def _match_column(columns: list[str], column: str) -> str:
    if column in columns:
        return column
    for same in (
        lambda c: _norm(c) == _norm(column),
        lambda c: _tokens(c) == _tokens(column),  # 'SG before' is 'before_sg'
    ):
        hits = [c for c in columns if same(c)]
        if len(hits) == 1:
            return hits[0]
    raise KeyError(f"column {column!r} not in the table; columns are: {columns}")


def _source_variable(variable: str, level: str, source_columns: list[str]) -> str:
    """The source column holding a Table 1 variable (its name, or a CDM category column)."""
    from pannet.cdm import TABLE1_LEVELS

    if variable in source_columns:
        return variable
    v = _norm(variable)
    cands = [c for c in TABLE1_LEVELS if c in source_columns and level in TABLE1_LEVELS[c]]
    best = [c for c in cands if _norm(c).startswith(v) or v.startswith(_norm(c).split("_")[0])]
    if len(best) == 1:
        return best[0]
    if len(cands) == 1:
        return cands[0]
    raise KeyError(f"cannot tell which column of the source holds variable {variable!r}")


def resolve_cell(root: Path, rel: str, record: dict, row: str, column: str | None) -> dict:
    """The source rows a cell of an aggregated (Table-1-like) table counts.

    The writer may state it in ``extra={"cell_lineage": {...}}``::

        {"sources": {"SG before": {"path": "results/cohort/analysis.parquet",
                                   "where": {"group": "SG"}}, ...},
         "variables": {"Age": "age_group", ...}}   # optional: label -> source column

    meaning the cell (variable, level) x column counts the rows of ``path`` that satisfy
    ``where`` and have ``level`` in the variable's source column. Without it, a column is
    matched to an input with ``patient_key`` and ``group`` columns: 'after'/'matched'
    columns to the matched cohort, others to the analysis cohort; 'non-SG' vs 'SG'
    selects the group.
    """
    cols = _columns(root, rel)
    df = _read(root, rel, cols)
    i = _match_row(df, row)
    variable, level = str(df["variable"].iloc[i]), str(df["level"].iloc[i])
    lineage = (record.get("extra") or {}).get("cell_lineage") or {}
    value_cols = [
        c for c in cols if {"sg", "nonsg"} & _tokens(c) and not {"smd", "pct", "n"} & _tokens(c)
    ] or [c for c in cols if c not in ("variable", "level")]
    chosen = [_match_column(cols, column)] if column else value_cols
    sources = {}
    for col in chosen:
        spec = (lineage.get("sources") or {}).get(col)
        if spec is None:
            spec = _guess_source(root, record, col)
        if spec is None:
            continue
        sources[col] = spec
    if not sources:
        raise KeyError(f"no input of {rel} holds the patients behind column(s) {chosen}")
    keys: dict[str, set[str]] = defaultdict(set)
    where_text = []
    for col, spec in sources.items():
        src_cols = _columns(root, spec["path"])
        var_col = (lineage.get("variables") or {}).get(variable) or _source_variable(
            variable, level, src_cols
        )
        need = sorted({"patient_key", var_col, *spec.get("where", {})})
        src = _read(root, spec["path"], need)
        mask = src[var_col].astype("string") == level
        for k, v in spec.get("where", {}).items():
            mask &= src[k].astype("string") == str(v)
        keys[spec["path"]].update(src.loc[mask.fillna(False), "patient_key"].astype(str))
        conds = [f"{k} == {v!r}" for k, v in spec.get("where", {}).items()]
        conds.append(f"{var_col} == {level!r}")
        where_text.append(
            f"{col}: {int(mask.fillna(False).sum())} rows of {spec['path']} where "
            + " and ".join(conds)
        )
    value = {c: _plain(df[c].iloc[i]) for c in chosen}
    return {
        "row": i,
        "variable": variable,
        "level": level,
        "columns": chosen,
        "value": value,
        "counted": where_text,
        "keys": {p: sorted(k) for p, k in keys.items()},
    }


def _plain(v):
    return v.item() if hasattr(v, "item") else (None if v is None else str(v))


def _guess_source(root: Path, record: dict, column: str) -> dict | None:
    cands = {}
    for inp in record.get("inputs", []):
        cols = set(_columns(root, inp["path"]))
        if "patient_key" in cols and cols & {"group", "treated"}:
            cands[inp["path"]] = cols
    tokens = _tokens(column)
    after = bool({"after", "matched"} & tokens)
    pick = sorted(
        (c for c in cands if ("matched" in Path(c).name) == after),
        key=lambda c: (Path(c).stem not in ("analysis", "matched"), c),
    )
    if not pick:
        return None
    path, cols = pick[0], cands[pick[0]]
    where: dict[str, object] = {}
    group = "non-SG" if "nonsg" in tokens else "SG" if "sg" in tokens else None
    if group is not None:
        where = {"group": group} if "group" in cols else {"treated": int(group == "SG")}
    return {"path": path, "where": where}


def _select_rows(root: Path, rel: str, row: str, column: str | None) -> dict:
    """Rows of an artefact with row lineage columns: by position or 'column=value'."""
    cols = _columns(root, rel)
    df = _read(root, rel, cols)
    if "=" in row:
        k, v = row.split("=", 1)
        sel = df[df[k.strip()].astype("string") == v.strip()]
    else:
        sel = df.iloc[[int(row)]]
    out: dict[str, Any] = {"row": row, "n": len(sel)}
    if column:
        out["value"] = [_plain(x) for x in sel[_match_column(cols, column)]]
    if "patient_key" in cols:
        out["keys"] = {rel: sorted(sel["patient_key"].astype(str))}
    if {"site", "source_row"} <= set(cols):
        out["site_rows"] = sorted(
            zip(sel["site"].astype(str), sel["source_row"].astype(int), strict=True)
        )
    return out


def _row_tag(rel: str, record: dict) -> str:
    """What a step's ``source_row`` numbers index: a named raw file, else the table name.

    The writer may name the raw file in ``extra={"row_lineage": {"source_row": path}}``;
    otherwise the table's name ('patients', 'treatments') is matched to raw file names.
    """
    named = ((record.get("extra") or {}).get("row_lineage") or {}).get("source_row")
    return named if isinstance(named, str) else Path(rel).stem


def _dictionary_file(root: Path, tag: str, raw: list[str]) -> list[str]:
    """The raw file a site data dictionary (an input of the step) names for table ``tag``."""
    import yaml

    for r in raw:
        if Path(r).suffix not in (".yaml", ".yml") or not (root / r).exists():
            continue
        try:
            files = (yaml.safe_load((root / r).read_text()) or {}).get("files") or {}
        except yaml.YAMLError:
            continue
        spec = files.get(tag) if isinstance(files, dict) else None
        if isinstance(spec, dict) and spec.get("path"):
            hits = [x for x in raw if Path(x).name == Path(spec["path"]).name]
            if hits:
                return hits
    return []


def _raw_target(tag: str, raw: list[str], site: str, root: Path | None = None) -> list[str]:
    """Which raw file(s) of ``raw`` the rows tagged ``tag`` at ``site`` refer to."""
    if tag in raw:
        return [tag]
    named = _dictionary_file(root, tag, raw) if root is not None else []
    if named:
        return named
    data = [r for r in raw if Path(r).suffix.lower() in RAW_DATA_SUFFIXES]
    at_site = [r for r in data if site in Path(r).parts or site in Path(r).name] or data
    stem = tag.lower().rstrip("s")
    by_name = [r for r in at_site if stem and stem in Path(r).name.lower()]
    return by_name or at_site


def trace(
    artefact: str | os.PathLike,
    row: str | None = None,
    column: str | None = None,
    root: str | os.PathLike = ".",
    results: str = "results",
) -> dict[str, Any]:
    """The chain from ``artefact`` (or one cell) back to the raw files.

    Parameters
    ----------
    artefact : path
        An artefact under ``results/`` (Parquet, or a rendered file with a sidecar).
    row, column : str, optional
        A row ('age <50' in a Table-1-like table, a 0-based position, or 'col=value')
        and a column; with a row, the patients and raw rows behind it are followed.
    root : path
        The project root that recorded paths are relative to.

    Returns
    -------
    dict
        ``target``, ``cell`` (when a row is given), ``steps`` (one per artefact on the
        chain: rule, code version, params, seed, inputs, the rows kept from the
        selection), ``raw_files`` (with the raw rows) and ``code_files``.
    """
    root = Path(root)
    target = Path(os.path.normpath(artefact))
    if target.is_absolute():
        target = target.resolve().relative_to(root.resolve())
    target_rel = target.as_posix()
    if not (root / target_rel).exists():
        raise FileNotFoundError(f"no artefact {target_rel} under {root}")

    # The graph: artefacts (nodes) and their recorded inputs.
    records: dict[str, dict] = {}
    order: list[str] = []
    consumers: dict[str, list[str]] = defaultdict(list)
    stack = [target_rel]
    raw: dict[str, str] = {}
    code: dict[str, str] = {}
    while stack:
        rel = stack.pop()
        if rel in records:
            continue
        rec = _record(root, rel)
        records[rel] = rec
        order.append(rel)
        for inp in rec.get("inputs", []):
            p = inp["path"]
            if _is_artefact(p, results):
                consumers[p].append(rel)
                stack.append(p)
            elif _is_code(p):
                code[p] = inp["sha256"]
            else:
                raw[p] = inp["sha256"]

    # Consumers before producers, so a step's selection is complete when it is visited.
    topo: list[str] = []
    indeg = {n: len(set(consumers.get(n, []))) for n in order}
    ready = [target_rel]
    while ready:
        n = ready.pop(0)
        topo.append(n)
        for inp in sorted({i["path"] for i in records[n].get("inputs", [])}):
            if inp in indeg:
                indeg[inp] -= 1
                if indeg[inp] == 0:
                    ready.append(inp)
    topo += [n for n in order if n not in topo]

    cell = None
    keys: dict[str, set[str]] = defaultdict(set)  # patient keys selected per artefact
    # (site, source_row, tag) selected per artefact; the tag says which raw table.
    site_rows: dict[str, set[tuple[str, int, str]]] = defaultdict(set)
    if row is not None:
        cols = _columns(root, target_rel)
        if {"variable", "level"} <= set(cols):
            cell = resolve_cell(root, target_rel, records[target_rel], row, column)
        else:
            cell = _select_rows(root, target_rel, row, column)
            tag = _row_tag(target_rel, records[target_rel])
            site_rows[target_rel].update((s, r, tag) for s, r in cell.get("site_rows", []))
        for p, k in cell.get("keys", {}).items():
            keys[p].update(k)

    raw_rows: dict[str, set[int]] = defaultdict(set)
    steps = []
    for rel in topo:
        rec = records[rel]
        step: dict[str, Any] = {
            "path": rel,
            "rule": rec.get("rule"),
            "wildcards": (rec.get("job") or {}).get("wildcards", {}),
            "code": {
                k: (rec.get("code") or {}).get(k) for k in ("pannet", "commit", "dirty", "modules")
            },
            "params": rec.get("params", {}),
            "seed": rec.get("seed"),
            "time": rec.get("time"),
            "inputs": [i["path"] for i in rec.get("inputs", [])],
        }
        if row is not None:
            cols = _columns(root, rel)
            sel_keys = keys.get(rel)
            if rel != target_rel and sel_keys and "patient_key" in cols:
                need = ["patient_key", *[c for c in ("site", "source_row") if c in cols]]
                df = _read(root, rel, need)
                df = df[df["patient_key"].astype(str).isin(sel_keys)]
                step["rows"] = {"n": len(df), "patient_keys": len(set(df["patient_key"]))}
                if "source_row" in cols:
                    tag = _row_tag(rel, rec)
                    site_rows[rel].update(
                        (s, r, tag)
                        for s, r in zip(
                            df["site"].astype(str), df["source_row"].astype(int), strict=True
                        )
                    )
            elif rel != target_rel and site_rows.get(rel) and "source_row" in cols:
                step["rows"] = {"n": len(site_rows[rel])}
            if site_rows.get(rel):
                step.setdefault("rows", {})["source_rows"] = {
                    f"{s} {t}": sorted(r for ss, r, tt in site_rows[rel] if (ss, tt) == (s, t))
                    for s, t in sorted({(s, t) for s, _, t in site_rows[rel]})
                }
            # Pass the selection on to this step's inputs.
            inputs = [i["path"] for i in rec.get("inputs", [])]
            for p in inputs:
                if _is_artefact(p, results):
                    if sel_keys:
                        keys[p].update(sel_keys)
                    if site_rows.get(rel):
                        site_rows[p].update(site_rows[rel])
            raw_inputs = [p for p in inputs if p in raw]
            if site_rows.get(rel) and raw_inputs:
                for s, t in {(s, t) for s, _, t in site_rows[rel]}:
                    for f in _raw_target(t, raw_inputs, s, root):
                        raw_rows[f].update(r for ss, r, tt in site_rows[rel] if (ss, tt) == (s, t))
        steps.append(step)
    return {
        "target": target_rel,
        "cell": {k: v for k, v in cell.items() if k not in ("keys",)} if cell else None,
        "steps": steps,
        "raw_files": [
            {"path": p, "sha256": h, **({"rows": sorted(raw_rows[p])} if p in raw_rows else {})}
            for p, h in sorted(raw.items())
        ],
        "code_files": [{"path": p, "sha256": h} for p, h in sorted(code.items())],
    }


def _rows_text(rows: list[int], limit: int = 40) -> str:
    shown = ", ".join(map(str, rows[:limit]))
    return shown + (f", ... ({len(rows)} rows)" if len(rows) > limit else f" ({len(rows)} rows)")


def format_trace(result: dict[str, Any]) -> str:
    """The trace as text: the cell, each step with its code and params, the raw rows."""
    out = [f"artefact: {result['target']}"]
    cell = result.get("cell")
    if cell:
        if "variable" in cell:
            out.append(
                f"cell: row {cell['variable']} {cell['level']!r} x column(s) "
                f"{', '.join(cell['columns'])} = {cell['value']}"
            )
            out.extend(f"  counts {c}" for c in cell["counted"])
        else:
            out.append(f"rows: {cell['row']} ({cell['n']} rows) {cell.get('value', '')}")
    out.append("chain (each step, newest first):")
    for i, s in enumerate(result["steps"], 1):
        c = s["code"]
        commit = (c.get("commit") or "no git")[:12] + (" dirty" if c.get("dirty") else "")
        wc = "".join(f" {k}={v}" for k, v in s["wildcards"].items())
        out.append(f"[{i}] {s['path']}")
        out.append(f"    rule {s['rule']}{wc}; pannet {c.get('pannet')} @ {commit}; {s['time']}")
        mods = ", ".join(f"{m} {h[:10]}" for m, h in sorted((c.get("modules") or {}).items()))
        out.append(f"    modules: {mods}")
        if s["params"]:
            out.append(f"    params: {json.dumps(s['params'], sort_keys=True)}")
        if s["seed"] is not None:
            out.append(f"    seed: {s['seed']}")
        out.append(f"    inputs: {', '.join(s['inputs'])}")
        if "rows" in s:
            r = s["rows"]
            if "n" in r:
                out.append(f"    rows kept: {r['n']}")
            for site, rows in (r.get("source_rows") or {}).items():
                out.append(f"    raw source_row at {site}: {_rows_text(rows)}")
    out.append("raw files:")
    for f in result["raw_files"]:
        rows = f" rows {_rows_text(f['rows'])}" if "rows" in f else ""
        out.append(f"  {f['path']} sha256 {f['sha256'][:16]}{rows}")
    if result["code_files"]:
        out.append("code files:")
        out.extend(f"  {f['path']} sha256 {f['sha256'][:16]}" for f in result["code_files"])
    return "\n".join(out)
