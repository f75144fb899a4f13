"""Site data dictionaries and the raw-data layer: read each site's export, map it to the CDM.

A site is described by a data dictionary, ``config/sites/<site>.yaml``, validated against
``workflow/schemas/site.schema.yaml``: its files and their format (CSV options, Excel
sheets, REDCap export + data dictionary), its local identifier, and for every column of
the common data model (:mod:`pannet.cdm`) the raw column it comes from, its type, date
format, unit, code list, missing-value tokens and plausible range, or how it is derived
(Charlson index from component conditions, a code from REDCap checkbox columns, the birth
date from the personnummer). Adding a site needs a dictionary and its files, no code.

Three steps, each usable on its own:

- :func:`read_raw` reads every raw table as *strings exactly as exported* (no parsing) with
  a ``source_row`` column (1-based data row in that file) and the file in
  ``df.attrs["file"]``; in a worksheet ``source_row`` is the Excel row number minus the
  header row (blank rows are skipped, not renumbered). Excel cells are rendered as text: date cells as ISO
  ``YYYY-MM-DD`` (``YYYY-MM-DDTHH:MM:SS`` when they carry a time), integral numbers without
  a decimal part, other numbers with Python's ``repr``, empty cells as ``""``. Structural
  problems raise :class:`StructuralError` naming site, file, column and rule, with the fix.
- :func:`to_cdm` maps raw tables to the CDM; it never raises on a bad value: the value
  becomes NA and an issue row (site, file, source_row, column, value, rule) is recorded.
- :func:`column_specs` lists every raw column's rule, for the validation suite.

Only pandas, yaml and jsonschema are imported (xlsx is read with zipfile + ElementTree).
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pannet import cdm

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = PROJECT_ROOT / "workflow" / "schemas" / "site.schema.yaml"

# Conversion of a raw unit to the CDM unit of the column (sizes are centimetres in the CDM).
UNIT_FACTORS: dict[str, float] = {"mm": 0.1, "cm": 1.0}

REDCAP_REPEAT_COLUMN = "redcap_repeat_instrument"

ISSUE_COLUMNS = ("site", "file", "source_row", "column", "cdm_column", "value", "rule", "message")

_CSV_DEFAULTS = {"delimiter": ",", "encoding": "utf-8", "decimal": ".", "quotechar": '"'}
_REDCAP_CSV = {"delimiter": ",", "encoding": "utf-8", "decimal": ".", "quotechar": '"'}


class StructuralError(ValueError):
    """A site export cannot be read as its dictionary describes (stops the run)."""


class DictionaryError(ValueError):
    """A site dictionary breaks its schema or refers to unknown CDM names."""


# ---------------------------------------------------------------------------
# Dictionaries


def _schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_dictionary(path: str | Path) -> dict[str, Any]:
    """Read and validate a site dictionary; fill the schema defaults.

    Parameters
    ----------
    path : str or Path
        ``config/sites/<site>.yaml``.

    Returns
    -------
    dict
        The dictionary, with defaults filled (``missing``, CSV options, ``required``...).

    Raises
    ------
    DictionaryError
        Naming the file and the key that breaks the schema, or a semantic rule (unknown
        CDM column, unknown Charlson condition, a date column without ``date_format``...).
    """
    import jsonschema
    import yaml

    path = Path(path)
    try:
        d = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DictionaryError(f"site dictionary {path}: cannot be read: {exc}") from exc
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(d), key=str)
    if errors:
        e = errors[0]
        where = ".".join(map(str, e.absolute_path)) or "(top level)"
        raise DictionaryError(
            f"site dictionary {path}: key '{where}': {e.message} (schema rule: {e.validator}; "
            f"see {SCHEMA_PATH.relative_to(PROJECT_ROOT)})"
        )
    _fill_defaults(d)
    problems = _semantic_problems(d)
    if problems:
        raise DictionaryError(f"site dictionary {path}: " + "; ".join(problems))
    d["_path"] = str(path)
    return d


def _fill_defaults(d: dict) -> None:
    d.setdefault("synthetic", False)
    d.setdefault("personal_columns", [])
    d.setdefault("missing", [""])
    for f in d["files"].values():
        base = _REDCAP_CSV if f["format"] == "redcap" else _CSV_DEFAULTS
        f["csv"] = {**base, **f.get("csv", {})}
        f.setdefault("repeat_instrument", None)
    for table in ("patients", "treatments"):
        for spec in d[table]["columns"].values():
            spec.setdefault("required", False)
            spec["missing"] = list(dict.fromkeys([*d["missing"], *spec.get("missing", [])]))


def _semantic_problems(d: dict) -> list[str]:
    out = []
    for table, cdm_cols in (
        ("patients", cdm.PATIENT_COLUMNS),
        ("treatments", cdm.TREATMENT_COLUMNS),
    ):
        t = d[table]
        if t["file"] not in d["files"]:
            out.append(f"key '{table}.file': file role '{t['file']}' is not in 'files'")
        for col, spec in t["columns"].items():
            key = f"key '{table}.columns.{col}'"
            if col not in cdm_cols or col in ("patient_key", "site", "source_row"):
                out.append(f"{key}: '{col}' is not a mappable CDM column of pannet.cdm")
            typ, derive = spec.get("type"), spec.get("derive")
            if typ == "date" and "date_format" not in spec:
                out.append(f"{key}: a date column needs 'date_format'")
            if typ == "code" and "codes" not in spec:
                out.append(f"{key}: a code column needs 'codes'")
            if typ == "boolean" and not (spec.get("true_values") and spec.get("false_values")):
                out.append(f"{key}: a boolean column needs 'true_values' and 'false_values'")
            if derive in ("charlson", "first_checked"):
                if not spec.get("components"):
                    out.append(f"{key}: derive '{derive}' needs 'components'")
                if not (spec.get("true_values") and spec.get("false_values")):
                    out.append(f"{key}: derive '{derive}' needs 'true_values' and 'false_values'")
            if derive == "charlson":
                bad = sorted(set(spec.get("components", {}).values()) - set(cdm.CHARLSON_WEIGHTS))
                if bad:
                    out.append(
                        f"{key}: unknown Charlson condition(s) {bad}; known: "
                        f"{sorted(cdm.CHARLSON_WEIGHTS)}"
                    )
            if derive == "personnummer_birth_date" and "source" not in spec:
                out.append(f"{key}: derive 'personnummer_birth_date' needs 'source'")
    if d["identifier"]["kind"] == "mrn":
        try:
            re.compile(d["identifier"]["pattern"])
        except re.error as exc:
            out.append(f"key 'identifier.pattern': not a regular expression ({exc})")
    for f in d["files"].values():
        if f["format"] == "xlsx" and "sheet" not in f:
            out.append(f"file '{f['path']}': an xlsx file needs 'sheet'")
    return out


def _as_dictionary(site_cfg: dict, dictionary: dict | None) -> dict:
    if dictionary is not None:
        return dictionary
    p = Path(site_cfg["dictionary"])
    return load_dictionary(p if p.is_absolute() else PROJECT_ROOT / p)


def _data_dir(site_cfg: dict) -> Path:
    p = Path(site_cfg["data_dir"])
    return p if p.is_absolute() else PROJECT_ROOT / p


def raw_files(site_cfg: dict, dictionary: dict | None = None) -> list[str]:
    """Every raw file of one site's export (as given: relative to the project when relative).

    Parameters
    ----------
    site_cfg : dict
        ``config["sites"][site]``: ``{"dictionary": ..., "data_dir": ...}``.
    """
    d = _as_dictionary(site_cfg, dictionary)
    base = Path(site_cfg["data_dir"])
    return sorted({str(base / f["path"]) for f in d["files"].values()})


# ---------------------------------------------------------------------------
# Column rules, for readers and for the validation suite


def _source_columns(spec: dict) -> list[str]:
    cols = [spec["source"]] if "source" in spec else []
    return cols + list(spec.get("components", {}))


def column_specs(dictionary: dict) -> pd.DataFrame:
    """One row per raw column the dictionary names, with the rule it must satisfy.

    Columns: ``role`` (file role), ``table`` (patients/treatments), ``column`` (raw name),
    ``cdm_column``, ``type`` (string/integer/decimal/date/code/boolean/identifier/key),
    ``date_format``, ``codes`` (list of allowed raw codes, or None), ``true_values``,
    ``false_values``, ``missing`` (tokens), ``required``, ``min``, ``max`` (in the raw unit),
    ``unit``, ``identifier_kind``, ``pattern``, ``unique`` (the column must be unique in
    its table), ``decimal`` (decimal mark).
    """
    rows = []
    ident = dictionary["identifier"]

    def row(table, column, **kw):
        role = dictionary[table]["file"]
        base = {
            "role": role,
            "table": table,
            "column": column,
            "cdm_column": None,
            "type": "string",
            "date_format": None,
            "codes": None,
            "true_values": None,
            "false_values": None,
            "missing": list(dictionary["missing"]),
            "required": False,
            "min": None,
            "max": None,
            "unit": None,
            "identifier_kind": None,
            "pattern": None,
            "unique": False,
            "decimal": dictionary["files"][role]["csv"]["decimal"]
            if dictionary["files"][role]["format"] == "csv"
            else ".",
        }
        base.update(kw)
        rows.append(base)

    row(
        "patients",
        ident["column"],
        type="identifier",
        required=True,
        unique=True,
        identifier_kind=ident["kind"],
        pattern=ident.get("pattern"),
    )
    pkey = dictionary["patients"]["key"]
    if pkey != ident["column"]:
        row("patients", pkey, type="key", required=True, unique=True)
    row("treatments", dictionary["treatments"]["key"], type="key", required=True)
    for table in ("patients", "treatments"):
        for col, spec in dictionary[table]["columns"].items():
            if "derive" in spec:
                if spec["derive"] == "personnummer_birth_date":
                    continue  # its source is the identifier, listed above
                for comp in spec["components"]:
                    row(
                        table,
                        comp,
                        cdm_column=col,
                        type="boolean",
                        true_values=spec["true_values"],
                        false_values=spec["false_values"],
                        missing=spec["missing"],
                        required=spec["required"],
                    )
                continue
            factor = UNIT_FACTORS.get(spec.get("unit", ""), 1.0)
            row(
                table,
                spec["source"],
                cdm_column=col,
                type=spec["type"],
                date_format=spec.get("date_format"),
                codes=list(spec["codes"]) if "codes" in spec else None,
                true_values=spec.get("true_values"),
                false_values=spec.get("false_values"),
                missing=spec["missing"],
                required=spec["required"],
                min=spec["min"] / factor if "min" in spec else None,
                max=spec["max"] / factor if "max" in spec else None,
                unit=spec.get("unit"),
            )
    return pd.DataFrame(rows)


def valid_personnummer(s: object) -> bool:
    """True when ``s`` is ``YYMMDD-NNNC`` / ``YYMMDD+NNNC`` with a real date and Luhn digit C."""
    if not isinstance(s, str):
        return False
    m = re.fullmatch(r"(\d{6})[-+](\d{3})(\d)", s.strip())
    if not m:
        return False
    digits = m.group(1) + m.group(2)
    try:
        datetime.strptime(m.group(1), "%y%m%d")
    except ValueError:
        return False
    return luhn_digit(digits) == int(m.group(3))


def luhn_digit(nine_digits: str) -> int:
    """The personnummer check digit of ``YYMMDDNNN`` (Luhn, weights 2,1,2,...)."""
    total = 0
    for i, ch in enumerate(nine_digits):
        p = int(ch) * (2 if i % 2 == 0 else 1)
        total += p // 10 + p % 10
    return (10 - total % 10) % 10


PERSONNUMMER_REFERENCE_YEAR = 2025


def personnummer_birth_date(
    s: object, reference_year: int = PERSONNUMMER_REFERENCE_YEAR
) -> date | None:
    """Birth date in a personnummer ``YYMMDD-NNNC`` / ``YYMMDD+NNNC``.

    ``-``: the latest year <= ``reference_year`` ending in YY; ``+`` (aged 100 or more): a
    century earlier. ``reference_year`` is the year of the export (the dictionary's
    ``identifier.reference_year``).
    """
    if not valid_personnummer(s):
        return None
    s = s.strip()
    yy, sep = int(s[:2]), s[6]
    year = reference_year - (reference_year - yy) % 100
    if sep == "+":
        year -= 100
    try:
        return date(year, int(s[2:4]), int(s[4:6]))
    except ValueError:
        return None


# ---------------------------------------------------------------------------
# Reading raw files


def _fail(site: str, file: Path | str, column: str | None, rule: str, fix: str) -> None:
    col = f", column '{column}'" if column else ""
    raise StructuralError(f"site '{site}', file '{file}'{col}: {rule}. Fix: {fix}")


def _read_csv(site: str, path: Path, opts: dict) -> pd.DataFrame:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        _fail(
            site,
            path,
            None,
            "the file does not exist",
            "export it there, or correct 'path' in the site dictionary / data_dir in config.yaml",
        )
    except OSError as exc:
        _fail(site, path, None, f"the file cannot be read ({exc})", "check its permissions")
    if not raw.strip():
        _fail(
            site,
            path,
            None,
            f"the file is empty ({len(raw)} bytes, not even a header row)",
            "re-export the file from the source system",
        )
    try:
        text = raw.decode(opts["encoding"])
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        _fail(
            site,
            path,
            None,
            f"not valid {opts['encoding']} text (byte {exc.start}, line {line}: "
            f"{raw[exc.start : exc.start + 4]!r})",
            f"re-export the file as {opts['encoding']}, or set 'csv.encoding' in the site "
            "dictionary to the encoding it was written in",
        )
    text = text.removeprefix("\ufeff")
    try:
        # header=None: a data row with more fields than the header is an error, not an index
        df = pd.read_csv(
            io.StringIO(text),
            sep=opts["delimiter"],
            quotechar=opts["quotechar"],
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            engine="c",
            quoting=csv.QUOTE_MINIMAL,
            header=None,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        _fail(
            site,
            path,
            None,
            f"not parseable as CSV with delimiter {opts['delimiter']!r} ({exc})",
            "check 'csv.delimiter' and 'csv.quotechar' in the site dictionary",
        )
    names = [str(x) for x in df.iloc[0]]
    df = df.iloc[1:].fillna("").reset_index(drop=True)
    df.columns = names
    return df


def _cell_text(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


_NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
_BUILTIN_DATE_FORMATS = set(range(14, 23)) | {45, 46, 47}


def _is_date_format(code: str) -> bool:
    code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", code)  # quoted text, [colour], escapes
    return bool(re.search(r"[dmyhs]", code, flags=re.IGNORECASE))


def _xlsx_parts(z) -> tuple[dict[str, str], list[str], set[int], bool]:
    """Sheet name -> part path, shared strings, date style indexes, 1904 date system."""
    import xml.etree.ElementTree as ET

    wb = ET.fromstring(z.read("xl/workbook.xml"))
    rels = ET.fromstring(z.read("xl/_rels/workbook.xml.rels"))
    target = {r.get("Id"): r.get("Target") for r in rels.iter(f"{_NS_PKG_REL}Relationship")}
    sheets = {}
    for sh in wb.iter(f"{_NS_MAIN}sheet"):
        t = target[sh.get(f"{_NS_REL}id")]
        sheets[sh.get("name")] = t.lstrip("/") if t.startswith("/") else "xl/" + t
    pr = wb.find(f"{_NS_MAIN}workbookPr")
    date1904 = pr is not None and pr.get("date1904") in ("1", "true")
    shared: list[str] = []
    if "xl/sharedStrings.xml" in z.namelist():
        for si in ET.fromstring(z.read("xl/sharedStrings.xml")).iter(f"{_NS_MAIN}si"):
            shared.append("".join(t.text or "" for t in si.iter(f"{_NS_MAIN}t")))
    dates: set[int] = set()
    if "xl/styles.xml" in z.namelist():
        st = ET.fromstring(z.read("xl/styles.xml"))
        custom = {
            int(f.get("numFmtId")): f.get("formatCode", "") for f in st.iter(f"{_NS_MAIN}numFmt")
        }
        xfs = st.find(f"{_NS_MAIN}cellXfs")
        for k, xf in enumerate(xfs if xfs is not None else []):
            fid = int(xf.get("numFmtId", 0))
            if fid in _BUILTIN_DATE_FORMATS or (fid in custom and _is_date_format(custom[fid])):
                dates.add(k)
    return sheets, shared, dates, date1904


def _col_index(ref: str) -> int:
    j = 0
    for ch in ref:
        if ch.isalpha():
            j = j * 26 + ord(ch.upper()) - 64
        else:
            break
    return j - 1


def _serial_text(v: str, date1904: bool) -> str:
    from datetime import timedelta

    x = float(v)
    base = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
    return _cell_text(base + timedelta(days=x))


def _read_xlsx(site: str, path: Path, sheet: str) -> pd.DataFrame:
    """Stream one worksheet as text (see the module docstring for the rendering of cells).

    A small SpreadsheetML reader (zipfile + ElementTree.iterparse) instead of openpyxl's
    read-only mode, which is 10x slower on a 100k-patient export. ``source_row`` is the
    sheet's row number minus the header row, so it points at the row a person sees in Excel.
    """
    import xml.etree.ElementTree as ET
    import zipfile

    if not path.exists():
        _fail(
            site,
            path,
            None,
            "the file does not exist",
            "export it there, or correct 'path' in the site dictionary / data_dir in config.yaml",
        )
    try:
        z = zipfile.ZipFile(path)
        sheets, shared, dates, date1904 = _xlsx_parts(z)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, ET.ParseError) as exc:
        _fail(
            site,
            path,
            None,
            f"not a readable .xlsx workbook ({exc})",
            "save the export as an Excel workbook (.xlsx)",
        )
    if sheet not in sheets:
        _fail(
            site,
            path,
            None,
            f"sheet '{sheet}' is missing (sheets: {list(sheets)})",
            "rename the sheet, or correct 'sheet' in the site dictionary",
        )
    rows: list[tuple[int, dict[int, str]]] = []
    c_tag, v_tag, row_tag = f"{_NS_MAIN}c", f"{_NS_MAIN}v", f"{_NS_MAIN}row"
    t_tag, is_tag = f"{_NS_MAIN}t", f"{_NS_MAIN}is"
    try:
        with z.open(sheets[sheet]) as fh:
            cells: dict[int, str] = {}
            row_no, col = 0, -1
            for _, el in ET.iterparse(fh, events=("end",)):
                tag = el.tag
                if tag == c_tag:
                    ref = el.get("r")
                    col = _col_index(ref) if ref else col + 1
                    typ = el.get("t", "n")
                    if typ == "inlineStr":
                        node = el.find(is_tag)
                        text = (
                            "".join(t.text or "" for t in node.iter(t_tag))
                            if node is not None
                            else ""
                        )
                    else:
                        v = el.findtext(v_tag)
                        if v is None:
                            text = ""
                        elif typ == "s":
                            text = shared[int(v)]
                        elif typ == "b":
                            text = "TRUE" if v == "1" else "FALSE"
                        elif typ in ("str", "e"):
                            text = v
                        elif int(el.get("s", 0)) in dates:
                            text = _serial_text(v, date1904)
                        else:
                            text = _cell_text(float(v))
                    if text != "":
                        cells[col] = text
                    el.clear()
                elif tag == row_tag:
                    r = el.get("r")
                    row_no = int(r) if r else row_no + 1
                    if cells:
                        rows.append((row_no, cells))
                    cells, col = {}, -1
                    el.clear()
    except (ET.ParseError, KeyError, ValueError, IndexError) as exc:
        _fail(
            site,
            path,
            None,
            f"sheet '{sheet}' cannot be parsed ({exc})",
            "re-save the workbook in Excel (.xlsx)",
        )
    finally:
        z.close()
    if not rows:
        _fail(site, path, None, f"sheet '{sheet}' is empty", "re-export the sheet")
    header_row, head = rows[0]
    n = max(head) + 1
    names = [head.get(j, "") for j in range(n)]
    data = [[cells.get(j, "") for j in range(n)] for _, cells in rows[1:]]
    df = (
        pd.DataFrame(data, columns=names, dtype=object)
        if data
        else pd.DataFrame({c: pd.Series(dtype=object) for c in names})
    )
    df.insert(0, "source_row", [r - header_row for r, _ in rows[1:]])
    return df


def _check_columns(site, path, df, needed, opts=None) -> None:
    data_cols = [c for c in df.columns if c != "source_row"]
    if len(needed) > 1 and len(data_cols) == 1 and opts is not None:
        _fail(
            site,
            path,
            None,
            f"only one column was found ({data_cols[0][:60]!r}...) with delimiter "
            f"{opts['delimiter']!r}: the delimiter is wrong",
            "set 'csv.delimiter' in the site dictionary to the separator the file uses",
        )
    dupes = sorted({c for c in df.columns if list(df.columns).count(c) > 1})
    if dupes:
        _fail(
            site,
            path,
            dupes[0],
            "the header row names the column more than once",
            "give every column of the export a unique header",
        )
    for col in needed:
        if col not in df.columns:
            import difflib

            near = difflib.get_close_matches(col, data_cols, n=1, cutoff=0.6)
            seen = f" (the header row has '{near[0]}': renamed?)" if near else ""
            _fail(
                site,
                path,
                col,
                f"a column the site dictionary names is missing from the header row{seen}",
                "add the column to the export, or correct the column name in the site dictionary",
            )


def _needed_columns(d: dict) -> dict[str, list[str]]:
    need: dict[str, list[str]] = {role: [] for role in d["files"]}
    ident = d["identifier"]["column"]
    need[d["patients"]["file"]] += [ident, d["patients"]["key"]]
    need[d["treatments"]["file"]] += [d["treatments"]["key"]]
    for table in ("patients", "treatments"):
        for spec in d[table]["columns"].values():
            need[d[table]["file"]] += _source_columns(spec)
    return {k: list(dict.fromkeys(v)) for k, v in need.items()}


def read_raw(
    site_id: str, site_cfg: dict, dictionary: dict | None = None
) -> dict[str, pd.DataFrame]:
    """Read every raw table of one site as strings, exactly as exported.

    Parameters
    ----------
    site_id : str
        The site's id, used in messages.
    site_cfg : dict
        ``config["sites"][site_id]`` (``dictionary``, ``data_dir``).
    dictionary : dict, optional
        An already loaded dictionary (else read from ``site_cfg["dictionary"]``).

    Returns
    -------
    dict of str -> DataFrame
        File role (``patients``, ``treatments``, ``redcap_dictionary``) -> table of str
        columns plus ``source_row`` (int, 1-based data row of the file, header excluded);
        ``df.attrs["file"]`` is the file's path. A REDCap export gives both ``patients``
        (rows of no repeating instrument) and ``treatments`` (rows of its instrument), each
        with the row numbers of the shared file.

    Raises
    ------
    StructuralError
        Missing/unreadable file, wrong encoding or delimiter, missing sheet or column.
    """
    d = _as_dictionary(site_cfg, dictionary)
    base = _data_dir(site_cfg)
    needed = _needed_columns(d)
    cache: dict[tuple, pd.DataFrame] = {}
    out: dict[str, pd.DataFrame] = {}
    for role, f in d["files"].items():
        path = base / f["path"]
        shown = Path(site_cfg["data_dir"]) / f["path"]
        key = (str(path), f.get("sheet"))
        if key not in cache:
            if f["format"] == "xlsx":
                df = _read_xlsx(site_id, path, f["sheet"])
            else:
                df = _read_csv(site_id, path, f["csv"])
                df.insert(0, "source_row", range(1, len(df) + 1))
            cache[key] = df
        df = cache[key]
        opts = f["csv"] if f["format"] != "xlsx" else None
        if f["format"] == "redcap" and role != "redcap_dictionary":
            _check_columns(site_id, shown, df, [REDCAP_REPEAT_COLUMN, *needed.get(role, [])], opts)
            inst = f["repeat_instrument"]
            sel = df[REDCAP_REPEAT_COLUMN].str.strip() == (inst or "")
            df = df.loc[sel]
        else:
            _check_columns(site_id, shown, df, needed.get(role, []), opts)
        if df.empty and role in (d["patients"]["file"], d["treatments"]["file"]):
            where = f"sheet '{f['sheet']}' has" if f["format"] == "xlsx" else "the file has"
            what = f" (no rows of REDCap instrument '{f['repeat_instrument'] or '(none)'}')"
            _fail(
                site_id,
                shown,
                None,
                f"{where} a header row but no data rows for the {role} table"
                + (what if f["format"] == "redcap" else ""),
                "re-export the data rows (an export with no rows is a failed export)",
            )
        df = df.reset_index(drop=True).copy()
        df.attrs["file"] = str(shown)
        df.attrs["site"] = site_id
        out[role] = df
    if "redcap_dictionary" in d["files"]:
        export = next((r, f) for r, f in d["files"].items() if f["format"] == "redcap" and r in out)
        _check_redcap_dictionary(
            site_id,
            Path(site_cfg["data_dir"]) / d["files"]["redcap_dictionary"]["path"],
            out["redcap_dictionary"],
            Path(site_cfg["data_dir"]) / export[1]["path"],
            cache[(str(base / export[1]["path"]), None)],
        )
    return out


def redcap_export_columns(dictionary: pd.DataFrame) -> dict[str, list[str]]:
    """Field -> the columns a REDCap raw export has for it, by the project's data dictionary.

    A checkbox field ``f`` with choices ``1, A | 2, B`` is exported as ``f___1``, ``f___2``;
    a descriptive field has no column; every form ``x`` adds ``x_complete``.
    """
    out: dict[str, list[str]] = {}
    for r in dictionary.itertuples(index=False):
        name, form, ftype, choices = (str(v).strip() for v in r[:4])
        if form:
            out.setdefault(f"{form}_complete", [f"{form}_complete"])
        if ftype == "descriptive":
            continue
        if ftype == "checkbox":
            codes = [
                c.split(",", 1)[0].strip().lower().replace("-", "_") for c in choices.split("|")
            ]
            out[name] = [f"{name}___{c}" for c in codes]
        else:
            out[name] = [name]
    return out


def _check_redcap_dictionary(site, dict_path, dictionary, export_path, export) -> None:
    """Stop when a REDCap export and its data dictionary describe different projects.

    Every column of the export must be a field (or checkbox choice) of the dictionary, and
    a checkbox field in the export must have one column per choice. The export may hold a
    subset of the fields (REDCap exports can be restricted); the fields the site dictionary
    needs are checked on the export itself.
    """
    need = [
        "Variable / Field Name",
        "Form Name",
        "Field Type",
        "Choices, Calculations, OR Slider Labels",
    ]
    _check_columns(site, dict_path, dictionary, need)
    fields = redcap_export_columns(dictionary[need])
    expected = {c for cols in fields.values() for c in cols}
    have = [c for c in export.columns if c != "source_row"]
    fix = (
        "export the records and the data dictionary from the same REDCap project at the same "
        "time (or replace the dictionary file with the project's current one)"
    )
    for col in have:
        if col not in expected and not col.startswith("redcap_"):
            _fail(
                site,
                dict_path,
                col,
                f"the REDCap export {export_path} (header row) has this column but its REDCap "
                "data dictionary defines no such field",
                fix,
            )
    for cols in fields.values():
        if len(cols) > 1 and any(c in have for c in cols):
            for col in cols:
                if col not in have:
                    _fail(
                        site,
                        dict_path,
                        col,
                        "the REDCap data dictionary defines this checkbox choice but the export "
                        f"{export_path} (header row) has no column for it",
                        fix,
                    )


# ---------------------------------------------------------------------------
# Mapping to the CDM


class _Issues:
    def __init__(self, site: str):
        self.site = site
        self.parts: list[pd.DataFrame] = []

    def add(self, file, rows: pd.Series, column, cdm_column, values: pd.Series, rule, message):
        if len(rows) == 0:
            return
        self.parts.append(
            pd.DataFrame(
                {
                    "site": self.site,
                    "file": file,
                    "source_row": rows.to_numpy(),
                    "column": column,
                    "cdm_column": cdm_column,
                    "value": values.astype(str).to_numpy(),
                    "rule": rule,
                    "message": message,
                }
            )
        )

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            df = pd.DataFrame({c: pd.Series(dtype="string") for c in ISSUE_COLUMNS})
        else:
            df = pd.concat(self.parts, ignore_index=True)
        df["source_row"] = df["source_row"].astype("Int64")
        for c in ISSUE_COLUMNS:
            if c != "source_row":
                df[c] = df[c].astype("string")
        return df.sort_values(
            ["file", "source_row", "column", "rule"], kind="stable", ignore_index=True
        )[list(ISSUE_COLUMNS)]


def _missing_mask(s: pd.Series, tokens: list[str]) -> pd.Series:
    return s.str.strip().isin(tokens)


def _parse_column(df, spec, cdm_col, dtype, decimal, file, issues: _Issues) -> pd.Series:
    src = spec["source"]
    raw = df[src].astype(str)
    stripped = raw.str.strip()
    missing = stripped.isin(spec["missing"])
    rows = df["source_row"]
    typ = spec["type"]
    present = ~missing
    if typ == "date":
        val = pd.to_datetime(stripped.where(present), format=spec["date_format"], errors="coerce")
        bad = present & val.isna()
        rule, msg = "date_format", f"not a date in format {spec['date_format']}"
    elif typ in ("integer", "decimal"):
        txt = stripped
        if typ == "decimal" and decimal == ",":
            txt = txt.str.replace(",", ".", regex=False)
        num = pd.to_numeric(txt.where(present), errors="coerce")
        if typ == "integer":
            bad = present & (num.isna() | (num.round() != num))
            rule, msg = "integer", "not an integer"
        else:
            bad = present & num.isna()
            rule, msg = "decimal", f"not a decimal number (decimal mark {decimal!r})"
        val = num.where(~bad) * UNIT_FACTORS.get(spec.get("unit", ""), 1.0)
    elif typ == "code":
        codes = spec["codes"]
        known = stripped.isin(list(codes))
        bad = present & ~known
        val = stripped.map(lambda x: codes.get(x)).where(present & known)
        rule, msg = "code_list", f"not in the code list {sorted(codes)}"
    elif typ == "boolean":
        t, f = spec["true_values"], spec["false_values"]
        is_t, is_f = stripped.isin(t), stripped.isin(f)
        bad = present & ~(is_t | is_f)
        val = pd.Series(pd.NA, index=df.index, dtype="boolean")
        val[is_t] = True
        val[is_f] = False
        rule, msg = "boolean", f"not one of {t + f}"
    else:
        val = stripped.where(present)
        bad = pd.Series(False, index=df.index)
        rule, msg = "string", ""
    issues.add(file, rows[bad], src, cdm_col, raw[bad], rule, msg)
    if spec["required"]:
        issues.add(
            file,
            rows[missing],
            src,
            cdm_col,
            raw[missing],
            "required",
            "a mandatory value is missing",
        )
    val = val.where(~bad)
    if typ in ("integer", "decimal") and ("min" in spec or "max" in spec):
        lo, hi = spec.get("min", float("-inf")), spec.get("max", float("inf"))
        out = val.notna() & ((val < lo) | (val > hi))
        issues.add(
            file,
            rows[out],
            src,
            cdm_col,
            raw[out],
            "range",
            f"outside the plausible range [{lo}, {hi}]",
        )
        val = val.where(~out)
    return _to_dtype(val, dtype)


def _to_dtype(val: pd.Series, dtype: str) -> pd.Series:
    if dtype.startswith("datetime"):
        return pd.to_datetime(val, errors="coerce").astype("datetime64[ns]")
    if dtype == "Int64":
        return pd.to_numeric(val, errors="coerce").round().astype("Int64")
    if dtype == "Float64":
        return pd.to_numeric(val, errors="coerce").astype("Float64")
    if dtype == "boolean":
        return val.astype("boolean")
    return val.astype("string")


def _derive(df, spec, cdm_col, dtype, file, issues: _Issues, ident_col) -> pd.Series:
    rows = df["source_row"]
    kind = spec["derive"]
    if kind == "personnummer_birth_date":
        src = spec["source"]
        ref = spec.get("reference_year", PERSONNUMMER_REFERENCE_YEAR)
        val = df[src].map(lambda x: personnummer_birth_date(x, ref))
        return _to_dtype(pd.to_datetime(val, errors="coerce"), dtype)
    t, f = spec["true_values"], spec["false_values"]
    comps = spec["components"]
    checked = pd.DataFrame(index=df.index)
    any_bad = pd.Series(False, index=df.index)
    for col in comps:
        s = df[col].astype(str).str.strip()
        miss = s.isin(spec["missing"])
        is_t, is_f = s.isin(t), s.isin(f)
        bad = ~miss & ~(is_t | is_f)
        issues.add(file, rows[bad], col, cdm_col, df[col][bad], "boolean", f"not one of {t + f}")
        if spec["required"]:
            issues.add(
                file,
                rows[miss],
                col,
                cdm_col,
                df[col][miss],
                "required",
                "a mandatory value is missing",
            )
        any_bad |= bad | miss
        checked[col] = is_t
    if kind == "charlson":
        weights = pd.Series({c: cdm.CHARLSON_WEIGHTS[n] for c, n in comps.items()})
        val = (checked.astype(int) * weights).sum(axis=1).astype("Int64")
        return val.mask(any_bad)
    # first_checked: the first checked component's code; several checked is ambiguous
    n_checked = checked.sum(axis=1)
    first = checked.idxmax(axis=1).map(comps)
    val = first.where(n_checked > 0, spec.get("default"))
    multi = n_checked > 1
    issues.add(
        file,
        rows[multi],
        ",".join(comps),
        cdm_col,
        pd.Series(n_checked[multi].astype(str) + " checked", index=rows[multi].index),
        "single_choice",
        "more than one option is checked",
    )
    return _to_dtype(val.mask(any_bad | multi), dtype)


def _map_table(site_id, df, dictionary, table, cdm_cols, issues) -> pd.DataFrame:
    d = dictionary
    role = d[table]["file"]
    fmt = d["files"][role]["format"]
    decimal = d["files"][role]["csv"]["decimal"] if fmt == "csv" else "."
    file = df.attrs.get("file", d["files"][role]["path"])
    out = pd.DataFrame(index=df.index)
    specs = d[table]["columns"]
    for col, (dtype, _) in cdm_cols.items():
        if col == "patient_key":
            out[col] = pd.Series(pd.NA, index=df.index, dtype="string")
        elif col == "site":
            out[col] = pd.Series(site_id, index=df.index, dtype="string")
        elif col == "source_row":
            out[col] = df["source_row"].astype("Int64")
        elif col in specs:
            spec = specs[col]
            if "derive" in spec:
                out[col] = _derive(df, spec, col, dtype, file, issues, d["identifier"]["column"])
            else:
                out[col] = _parse_column(df, spec, col, dtype, decimal, file, issues)
        else:
            out[col] = _to_dtype(pd.Series(pd.NA, index=df.index, dtype=object), dtype)
    return out


def to_cdm(
    site_id: str, raw_tables: dict[str, pd.DataFrame], dictionary: dict
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Map one site's raw tables to the CDM; a bad value becomes NA plus an issue row.

    Parameters
    ----------
    site_id : str
    raw_tables : dict
        As returned by :func:`read_raw`.
    dictionary : dict
        As returned by :func:`load_dictionary`.

    Returns
    -------
    patients : DataFrame
        ``pannet.cdm.PATIENT_COLUMNS`` (dtypes as there; ``patient_key`` NA, to be filled by
        pseudonymisation) plus ``local_id`` (the local identifier as exported; drop it after
        pseudonymisation).
    treatments : DataFrame
        ``pannet.cdm.TREATMENT_COLUMNS`` plus ``local_id`` (looked up through the
        treatment -> patient key; NA when the key matches no patient).
    issues : DataFrame
        ``ISSUE_COLUMNS``: site, file, source_row, column (raw), cdm_column, value (raw),
        rule (required, date_format, integer, decimal, code_list, boolean, range,
        single_choice, identifier, duplicate_key, unknown_patient), message.
    """
    d = dictionary
    issues = _Issues(site_id)
    praw = raw_tables[d["patients"]["file"]]
    traw = raw_tables[d["treatments"]["file"]]
    pfile = praw.attrs.get("file", d["files"][d["patients"]["file"]]["path"])
    tfile = traw.attrs.get("file", d["files"][d["treatments"]["file"]]["path"])

    patients = _map_table(site_id, praw, d, "patients", cdm.PATIENT_COLUMNS, issues)
    ident = d["identifier"]
    ids = praw[ident["column"]].astype(str).str.strip()
    if ident["kind"] == "personnummer":
        ok = ids.map(valid_personnummer)
        rule_msg = "not a personnummer YYMMDD-NNNC with a valid check digit"
    else:
        ok = ids.str.fullmatch(ident["pattern"]).fillna(False).astype(bool)
        rule_msg = f"does not match the MRN pattern {ident['pattern']}"
    miss = ids.isin(d["missing"])
    rows = praw["source_row"]
    issues.add(
        pfile,
        rows[miss],
        ident["column"],
        "local_id",
        praw[ident["column"]][miss],
        "required",
        "the patient identifier is missing",
    )
    bad = ~ok & ~miss
    issues.add(
        pfile,
        rows[bad],
        ident["column"],
        "local_id",
        praw[ident["column"]][bad],
        "identifier",
        rule_msg,
    )
    patients["local_id"] = ids.where(~miss).astype("string")
    dup = ids.duplicated(keep=False) & ~miss
    issues.add(
        pfile,
        rows[dup],
        ident["column"],
        "local_id",
        praw[ident["column"]][dup],
        "duplicate_key",
        "the identifier appears on more than one row of the file",
    )

    treatments = _map_table(site_id, traw, d, "treatments", cdm.TREATMENT_COLUMNS, issues)
    pkey = praw[d["patients"]["key"]].astype(str).str.strip()
    lookup = pd.Series(ids.to_numpy(), index=pkey.to_numpy())
    lookup = lookup[~lookup.index.duplicated()]
    tkey = traw[d["treatments"]["key"]].astype(str).str.strip()
    local = tkey.map(lookup)
    unknown = local.isna()
    issues.add(
        tfile,
        traw["source_row"][unknown],
        d["treatments"]["key"],
        "local_id",
        traw[d["treatments"]["key"]][unknown],
        "unknown_patient",
        "the treatment refers to no patient of the patients file",
    )
    treatments["local_id"] = local.astype("string")
    return (patients.reset_index(drop=True), treatments.reset_index(drop=True), issues.frame())
