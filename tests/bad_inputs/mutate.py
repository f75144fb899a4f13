"""Apply the defects of the bad-input catalogue to a private copy of a site export.

Every site file is loaded as a *grid* (header + rows of cells) whatever its format:
a semicolon CSV (Uppsala), a sheet of an Excel workbook (Gothenburg) or the REDCap
export, where the ``patients`` and ``treatments`` tables are rows of one file told apart
by ``redcap_repeat_instrument`` (Boston). A catalogue case names rows by *selector*:

- ``5``: the 5th data row of the table;
- ``"included:2"`` / ``"excluded:1"``: the 2nd patient row whose fate in the baseline
  ledger is ``included`` (1st ``excluded``), so a case hits a patient who would otherwise be
  analysed (or not) whatever seed made the demo;
- ``"appended"``: the row an ``append_copy`` mutation added (the end of the file).

:func:`apply` returns the selectors resolved to ``source_row`` (the 1-based data row of
the file, as the pipeline reports it), so expectations use the same selectors.
"""

from __future__ import annotations

import csv
import io
import shutil
from dataclasses import dataclass, field
from pathlib import Path

REDCAP_REPEAT = "redcap_repeat_instrument"


@dataclass
class Grid:
    """One table-bearing file (or sheet) as header + rows, with how to write it back."""

    path: Path
    fmt: str  # csv | redcap | xlsx
    header: list
    rows: list[list]
    sheet: str | None = None
    delimiter: str = ","
    quotechar: str = '"'
    encoding: str = "utf-8"
    newline: str = "\n"
    bom: bool = False
    raw_bytes: bytes | None = None  # set: write these bytes instead (empty file, ...)
    sheet_name: str | None = None  # renamed sheet

    def col(self, name: str) -> int:
        if name not in self.header:
            raise KeyError(f"{self.path.name}: no column {name!r} (have {self.header})")
        return self.header.index(name)


@dataclass
class Export:
    """A private copy of one site's export and the grids loaded from it."""

    site: str
    data_dir: Path
    dictionary: dict
    grids: dict[tuple[str, str | None], Grid] = field(default_factory=dict)
    appended: dict[str, list[int]] = field(default_factory=dict)  # table -> source rows

    # ------------------------------------------------------------------ files
    def file_spec(self, role: str) -> dict:
        return self.dictionary["files"][role]

    def grid(self, role: str) -> Grid:
        f = self.file_spec(role)
        key = (f["path"], f.get("sheet"))
        if key not in self.grids:
            self.grids[key] = _load(self.data_dir / f["path"], f)
        return self.grids[key]

    def table_role(self, table: str) -> str:
        return self.dictionary[table]["file"] if table in ("patients", "treatments") else table

    def table_rows(self, table: str) -> list[int]:
        """Grid row indices (0-based) of one table, in file order."""
        role = self.table_role(table)
        g = self.grid(role)
        f = self.file_spec(role)
        if f["format"] != "redcap" or role == "redcap_dictionary":
            return list(range(len(g.rows)))
        j = g.col(REDCAP_REPEAT)
        want = f.get("repeat_instrument") or ""
        return [i for i, r in enumerate(g.rows) if str(r[j]).strip() == want]

    def save(self) -> None:
        for g in self.grids.values():
            _save(g)


def _load(path: Path, f: dict) -> Grid:
    if f["format"] == "xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(path)
        ws = wb[f["sheet"]]
        values = [list(r) for r in ws.iter_rows(values_only=True)]
        header = list(values[0])
        while header and header[-1] is None:
            header.pop()
        rows = [(r + [None] * len(header))[: len(header)] for r in values[1:]]
        return Grid(path, "xlsx", header, rows, sheet=f["sheet"])
    opts = f["csv"]
    raw = path.read_bytes()
    text = raw.decode(opts["encoding"])
    bom = text.startswith("\ufeff")
    text = text.removeprefix("\ufeff")
    newline = "\r\n" if "\r\n" in text[:2000] else "\n"
    records = list(
        csv.reader(
            io.StringIO(text, newline=""), delimiter=opts["delimiter"], quotechar=opts["quotechar"]
        )
    )
    return Grid(
        path,
        f["format"],
        records[0],
        records[1:],
        delimiter=opts["delimiter"],
        quotechar=opts["quotechar"],
        encoding=opts["encoding"],
        newline=newline,
        bom=bom,
    )


def _save(g: Grid) -> None:
    if g.raw_bytes is not None:
        g.path.write_bytes(g.raw_bytes)
        return
    if g.fmt == "xlsx":
        import openpyxl

        wb = openpyxl.load_workbook(g.path)
        ws = wb[g.sheet]
        ws.delete_rows(1, ws.max_row)
        for c, v in enumerate(g.header, 1):
            ws.cell(row=1, column=c, value=v)
        for r, row in enumerate(g.rows, 2):
            for c, v in enumerate(row, 1):
                ws.cell(row=r, column=c, value=v)
        if g.sheet_name:
            ws.title = g.sheet_name
        wb.save(g.path)
        return
    buf = io.StringIO(newline="")
    w = csv.writer(
        buf,
        delimiter=g.delimiter,
        quotechar=g.quotechar,
        lineterminator=g.newline,
        quoting=csv.QUOTE_MINIMAL,
    )
    w.writerow(g.header)
    w.writerows(g.rows)
    text = ("\ufeff" if g.bom else "") + buf.getvalue()
    g.path.write_bytes(text.encode(g.encoding))


# ---------------------------------------------------------------------- selectors
def resolve(ex: Export, table: str, selector, baseline_ledger=None) -> int:
    """A row selector -> source_row (1-based data row of the file)."""
    rows = ex.table_rows(table)
    if isinstance(selector, int):
        return rows[selector - 1] + 1
    kind, _, n = str(selector).partition(":")
    if kind == "appended":
        return ex.appended[table][int(n or 1) - 1]
    if baseline_ledger is None:
        raise ValueError(f"selector {selector!r} needs the baseline ledger")
    led = baseline_ledger
    hit = led[(led["site"] == ex.site) & (led["table"] == table) & (led["fate"] == kind)]
    return int(sorted(hit["source_row"].astype(int))[int(n) - 1])


# ---------------------------------------------------------------------- mutations
def _cell(value):
    """``"date:YYYY-MM-DD"`` -> a real date (an Excel date cell); anything else as given."""
    if isinstance(value, str) and value.startswith("date:"):
        from datetime import datetime

        return datetime.fromisoformat(value.removeprefix("date:"))
    return value


def apply(ex: Export, mutations: list[dict], baseline_ledger=None) -> dict[str, int]:
    """Apply the mutations in order; return ``"table:selector" -> source_row``."""
    where: dict[str, int] = {}

    def at(table, selector) -> tuple[Grid, int]:
        src = resolve(ex, table, selector, baseline_ledger)
        where[f"{table}:{selector}"] = src
        return ex.grid(ex.table_role(table)), src - 1

    for m in mutations:
        op = m["op"]
        table = m.get("table", "patients")
        if op == "set":
            g, i = at(table, m["row"])
            g.rows[i][g.col(m["column"])] = _cell(m["value"])
        elif op == "copy_value":  # row's column takes the value of from_row's
            g, i = at(table, m["row"])
            _, k = at(table, m["from_row"])
            g.rows[i][g.col(m["column"])] = g.rows[k][g.col(m["column"])]
        elif op == "append_copy":  # a copy of row at the end of the file, cells changed
            g, i = at(table, m["row"])
            new = list(g.rows[i])
            for c, v in (m.get("set") or {}).items():
                new[g.col(c)] = v
            g.rows.append(new)
            ex.appended.setdefault(table, []).append(len(g.rows))
            where[f"{table}:appended"] = len(g.rows)
        elif op == "replace_in_column":  # text replacement in every cell of a column
            g = ex.grid(ex.table_role(table))
            j = g.col(m["column"])
            for r in g.rows:
                if isinstance(r[j], str):
                    r[j] = r[j].replace(m["old"], m["new"])
        elif op == "drop_column":
            g = ex.grid(ex.table_role(table))
            j = g.col(m["column"])
            g.header.pop(j)
            for r in g.rows:
                r.pop(j)
        elif op == "rename_column":
            g = ex.grid(ex.table_role(table))
            g.header[g.col(m["column"])] = m["to"]
        elif op == "duplicate_column":
            g = ex.grid(ex.table_role(table))
            j = g.col(m["column"])
            g.header.append(g.header[j])
            for r in g.rows:
                r.append(r[j])
        elif op == "add_column":
            g = ex.grid(ex.table_role(table))
            g.header.append(m["column"])
            for r in g.rows:
                r.append(m.get("value", ""))
        elif op == "header_only":
            ex.grid(ex.table_role(table)).rows.clear()
        elif op == "empty_file":
            ex.grid(ex.table_role(table)).raw_bytes = b""
        elif op == "delete_file":
            role = ex.table_role(table)
            (ex.data_dir / ex.file_spec(role)["path"]).unlink()
        elif op == "encoding":
            ex.grid(ex.table_role(table)).encoding = m["encoding"]
        elif op == "bom":
            ex.grid(ex.table_role(table)).bom = True
        elif op == "newline":
            ex.grid(ex.table_role(table)).newline = m["newline"]
        elif op == "delimiter":
            ex.grid(ex.table_role(table)).delimiter = m["delimiter"]
        elif op == "rename_sheet":
            ex.grid(ex.table_role(table)).sheet_name = m["to"]
        elif op == "redcap_field":  # edit one cell of the REDCap data dictionary
            g = ex.grid("redcap_dictionary")
            (i,) = [k for k, r in enumerate(g.rows) if r[0] == m["field"]]
            g.rows[i][g.col(m["column"])] = m["value"]
        else:
            raise ValueError(f"unknown mutation op {op!r}")
    ex.save()
    return where


def private_copy(demo_dir: Path, dest: Path) -> Path:
    """Copy the demo exports (all sites) to ``dest``; return it."""
    shutil.copytree(demo_dir, dest)
    return dest
