"""Validation of each site's data with great-expectations, quarantine and an offline report.

Two suites, both run through great-expectations 1.x (ephemeral context, pandas data
source, whole-dataframe batch, ``result_format="COMPLETE"``):

* the **raw suite** of one site is built from its data dictionary
  (:func:`pannet.sites.column_specs`): every named column exists, mandatory values are
  present, values parse as their type (date format, integer, decimal with the site's
  decimal mark), codes are in their list, booleans are one of their tokens, the local
  identifier is well formed (personnummer check digit, MRN pattern) and unique, and every
  treatment refers to a patient of the export;
* the **CDM suite** is the same for every site and runs on the harmonised tables: date
  order (birth < diagnosis <= metastasis; surgery after diagnosis; death and last
  follow-up after every other event), plausible dates, ranges (size, counts, Charlson,
  Clavien-Dindo, Ki-67), code sets, unique pseudonyms, treatments referring to known
  patients.

Each expectation carries a pannet ``rule`` name; raw rules use the names of
:func:`pannet.sites.to_cdm` issues so that the same broken cell found twice is quarantined
once. The results table has one row per expectation (:data:`RESULT_COLUMNS`). Failing rows
become quarantine rows (:data:`QUARANTINE_COLUMNS`) naming site, file, row, column, value
and rule. Values of identifier, key, name and birth-date columns are never copied: they
are replaced by :data:`REDACTED`.

Data Docs: great-expectations' own Data Docs load CSS/JS from CDNs and would copy failing
values (identifiers among them) into HTML, so this module renders its own self-contained
HTML summary from the results table instead (:func:`render_html`); it reads offline.

great_expectations is imported inside :func:`run_suite` only (about 3.5 s per process).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pannet import cdm

log = logging.getLogger(__name__)

REDACTED = "<redacted>"

RESULT_COLUMNS: dict[str, str] = {
    "site": "string",
    "stage": "string",  # raw | cdm
    "file": "string",
    "table": "string",  # patients | treatments
    "column": "string",
    "cdm_column": "string",
    "expectation": "string",
    "rule": "string",
    "success": "bool",
    "n_rows": "int64",
    "n_failing": "int64",
    "failing_rows": "object",  # list of source_row
    "failing_values": "object",  # list of str, aligned with failing_rows (redacted where personal)
    "details": "string",
}

QUARANTINE_COLUMNS: dict[str, str] = {
    "site": "string",
    "file": "string",
    "table": "string",
    "source_row": "Int64",
    "column": "string",
    "cdm_column": "string",
    "value": "string",
    "rule": "string",
    "stage": "string",  # raw (great-expectations raw suite) | harmonise (to_cdm) | cdm
    "message": "string",
}

# Human wording of each rule, for messages and the HTML summary.
RULE_TEXT: dict[str, str] = {
    "column_exists": "the column is in the export",
    "required": "a mandatory value is present",
    "date_format": "the value is a date in the dictionary's format",
    "integer": "the value is an integer",
    "decimal": "the value is a decimal number with the site's decimal mark",
    "code_list": "the code is in the code list",
    "boolean": "the value is one of the boolean tokens",
    "range": "the value lies in its plausible range",
    "identifier": "the identifier is well formed",
    "duplicate_key": "the identifier is unique",
    "unknown_patient": "the treatment refers to a known patient",
    "date_plausible": "the date lies in the plausible window",
    "diagnosis_after_birth": "birth precedes diagnosis",
    "death_after_diagnosis": "death does not precede diagnosis",
    "treatment_after_diagnosis": "a treatment does not precede diagnosis",
    "last_followup_after_treatment": "a treatment does not start after the last follow-up",
    "code_set": "the value is in the CDM code set",
    "single_choice": "at most one option is checked",
}


@dataclass
class Check:
    """One expectation on one column (or column pair) of one table."""

    expectation: str  # great_expectations.expectations class name
    kwargs: dict
    rule: str
    column: str
    cdm_column: str | None = None
    redact: bool = False
    value_columns: tuple[str, ...] = ()  # columns whose values are shown for a failing row
    details: str = ""


@dataclass
class Frame:
    """A table prepared for validation and its checks."""

    table: str
    file: str
    data: pd.DataFrame  # index 0..n-1; column "source_row"
    raw: pd.DataFrame  # values quoted in quarantine rows (same index)
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> None:
        """Add a check unless the same expectation already covers the column and rule."""
        key = (check.expectation, check.column, check.rule)
        if all((c.expectation, c.column, c.rule) != key for c in self.checks):
            self.checks.append(check)


# ---------------------------------------------------------------------------
# Raw suite


def _prepared(
    df: pd.DataFrame, columns: Iterable[str], missing: dict[str, list[str]]
) -> pd.DataFrame:
    out = pd.DataFrame({"source_row": df["source_row"].to_numpy()})
    for col in columns:
        s = df[col].astype(str).str.strip()
        out[col] = s.where(~s.isin(missing.get(col, [""])), None).astype(object)
    return out


def raw_frames(site: str, raw: dict[str, pd.DataFrame], dictionary: dict) -> list[Frame]:
    """Build the raw suite of one site: prepared tables and their checks.

    Parameters
    ----------
    site : str
    raw : dict
        :func:`pannet.sites.read_raw` output (file role -> raw string table).
    dictionary : dict
        :func:`pannet.sites.load_dictionary` output.
    """
    from pannet.sites import column_specs, valid_personnummer

    specs = column_specs(dictionary)
    personal = set(dictionary.get("personal_columns", []))
    frames = []
    for table in ("patients", "treatments"):
        role = dictionary[table]["file"]
        df = raw[role].reset_index(drop=True)
        tspecs = specs[specs["table"] == table]
        cols = list(dict.fromkeys(tspecs["column"]))
        missing = {}
        for _, s in tspecs.iterrows():
            missing.setdefault(s["column"], list(s["missing"]))
        data = _prepared(df, cols, missing)
        frame = Frame(
            table=table,
            file=str(df.attrs.get("file", dictionary["files"][role]["path"])),
            data=data,
            raw=df[cols].astype(str),
        )
        add = frame.add

        for _, s in tspecs.iterrows():
            col, typ, cdm_col = s["column"], s["type"], s["cdm_column"]
            cdm_col = cdm_col if isinstance(cdm_col, str) else "local_id"
            redact = (
                typ in ("identifier", "key")
                or col in personal
                or cdm_col in ("birth_date", "local_id")
            )
            base = dict(column=col, cdm_column=cdm_col, redact=redact, value_columns=(col,))
            add(Check("ExpectColumnToExist", {"column": col}, "column_exists", **base))
            if s["required"]:
                add(Check("ExpectColumnValuesToNotBeNull", {"column": col}, "required", **base))
            if typ == "date":
                add(
                    Check(
                        "ExpectColumnValuesToMatchStrftimeFormat",
                        {"column": col, "strftime_format": s["date_format"]},
                        "date_format",
                        details=f"format {s['date_format']}",
                        **base,
                    )
                )
            elif typ in ("integer", "decimal"):
                mark = "\\." if s["decimal"] == "." else ","
                regex = (
                    r"^[+-]?\d+$"
                    if typ == "integer"
                    else rf"^[+-]?(?:\d+(?:{mark}\d*)?|{mark}\d+)$"
                )
                add(
                    Check(
                        "ExpectColumnValuesToMatchRegex",
                        {"column": col, "regex": regex},
                        typ,
                        **base,
                    )
                )
                lo, hi = s["min"], s["max"]
                if pd.notna(lo) or pd.notna(hi):
                    num_col = f"{col} [number]"
                    txt = data[col].astype("string")
                    if s["decimal"] == ",":
                        txt = txt.str.replace(",", ".", regex=False)
                    data[num_col] = pd.to_numeric(txt, errors="coerce")
                    add(
                        Check(
                            "ExpectColumnValuesToBeBetween",
                            {
                                "column": num_col,
                                "min_value": None if pd.isna(lo) else float(lo),
                                "max_value": None if pd.isna(hi) else float(hi),
                            },
                            "range",
                            details=f"[{lo}, {hi}] {s['unit'] or ''}".strip(),
                            **base,
                        )
                    )
            elif typ == "code":
                add(
                    Check(
                        "ExpectColumnValuesToBeInSet",
                        {"column": col, "value_set": list(s["codes"])},
                        "code_list",
                        details=f"codes {list(s['codes'])}",
                        **base,
                    )
                )
            elif typ == "boolean":
                tokens = list(s["true_values"]) + list(s["false_values"])
                add(
                    Check(
                        "ExpectColumnValuesToBeInSet",
                        {"column": col, "value_set": tokens},
                        "boolean",
                        details=f"tokens {tokens}",
                        **base,
                    )
                )
            elif typ == "identifier":
                if s["identifier_kind"] == "personnummer":
                    ok_col = f"{col} [valid personnummer]"
                    data[ok_col] = [
                        None if v is None else bool(valid_personnummer(v)) for v in data[col]
                    ]
                    add(
                        Check(
                            "ExpectColumnValuesToBeInSet",
                            {"column": ok_col, "value_set": [True]},
                            "identifier",
                            details="YYMMDD-NNNC, real date, Luhn check digit",
                            **base,
                        )
                    )
                else:
                    add(
                        Check(
                            "ExpectColumnValuesToMatchRegex",
                            {"column": col, "regex": f"^(?:{s['pattern']})$"},
                            "identifier",
                            details=f"MRN pattern {s['pattern']}",
                            **base,
                        )
                    )
            if s["unique"]:
                add(Check("ExpectColumnValuesToBeUnique", {"column": col}, "duplicate_key", **base))
            if table == "treatments" and typ == "key":
                pframe = frames[0]
                pkey = dictionary["patients"]["key"]
                # A helper column instead of the keys as value_set: GX re-serialises an
                # expectation's kwargs on every access (pydantic), which with ~10^5 keys
                # was most of validate_raw's time at registry scale.
                known_col = f"{col} [known patient]"
                data[known_col] = _in_set_or_none(data[col], set(pframe.data[pkey].dropna()))
                add(
                    Check(
                        "ExpectColumnValuesToBeInSet",
                        {"column": known_col, "value_set": [True]},
                        "unknown_patient",
                        details=f"a value of the patients file's key column {pkey}",
                        **base,
                    )
                )
        frames.append(frame)
    return frames


# ---------------------------------------------------------------------------
# CDM suite

_PATIENT_REQUIRED = (
    "patient_key",
    "sex",
    "diagnosis_date",
    "hereditary_syndrome",
    "who_grade",
    "hormonal_function",
    "last_followup_date",
)
_PATIENT_CODES = {
    "sex": cdm.SEX_CODES,
    "who_grade": cdm.GRADE_CODES,
    "hereditary_syndrome": cdm.SYNDROME_CODES,
    "hormonal_function": cdm.HORMONAL_CODES,
    "resection_type": cdm.RESECTION_TYPES,
}
_PATIENT_RANGES = {
    "ki67": (0, 100),
    "primary_size_cm": (0.1, 40),
    "liver_metastases_count": (0, 1000),
    "charlson_index": (0, 37),
    "clavien_dindo": (0, 5),
    "age_at_diagnosis_days": (1, int(120 * 365.25)),
}
# (later, earlier): the first date may not precede the second.
_PATIENT_DATE_ORDER = (
    ("metastasis_date", "diagnosis_date"),
    ("primary_resection_date", "diagnosis_date"),
    ("death_date", "diagnosis_date"),
    ("death_date", "metastasis_date"),
    ("death_date", "primary_resection_date"),
    ("last_followup_date", "diagnosis_date"),
    ("last_followup_date", "metastasis_date"),
    ("last_followup_date", "primary_resection_date"),
    ("last_followup_date", "death_date"),
)
_DATES = (
    "diagnosis_date",
    "metastasis_date",
    "primary_resection_date",
    "death_date",
    "last_followup_date",
)


def cdm_frames(
    patients: pd.DataFrame,
    treatments: pd.DataFrame,
    *,
    patients_file: str,
    treatments_file: str,
    earliest_date: str = "1900-01-01",
    latest_date: str = "2030-12-31",
) -> list[Frame]:
    """Build the CDM suite (the same for every site) on one site's harmonised tables."""
    p = patients.reset_index(drop=True).copy()
    t = treatments.reset_index(drop=True).copy()
    lo_d, hi_d = pd.Timestamp(earliest_date), pd.Timestamp(latest_date)

    pf = Frame("patients", patients_file, p, p.astype(str))
    for col in _PATIENT_REQUIRED:
        pf.checks.append(
            Check(
                "ExpectColumnValuesToNotBeNull",
                {"column": col},
                "required",
                col,
                col,
                value_columns=(col,),
            )
        )
    pf.checks.append(
        Check(
            "ExpectColumnValuesToBeUnique",
            {"column": "patient_key"},
            "duplicate_key",
            "patient_key",
            "patient_key",
        )
    )
    for col, codes in _PATIENT_CODES.items():
        pf.checks.append(
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": col, "value_set": list(codes)},
                "code_set",
                col,
                col,
                value_columns=(col,),
                details=f"{list(codes)}",
            )
        )
    for col, (lo, hi) in _PATIENT_RANGES.items():
        rule = "diagnosis_after_birth" if col == "age_at_diagnosis_days" else "range"
        pf.checks.append(
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": col, "min_value": lo, "max_value": hi},
                rule,
                col,
                col,
                value_columns=(col,),
                details=f"[{lo}, {hi}]" + (" (birth before diagnosis)" if rule != "range" else ""),
            )
        )
    for col in _DATES:
        pf.checks.append(_date_window(col, lo_d, hi_d))
    for later, earlier in _PATIENT_DATE_ORDER:
        pf.checks.append(
            Check(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": later,
                    "column_B": earlier,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                date_rule(later, earlier),
                later,
                later,
                value_columns=(later, earlier),
                details=f"{later} >= {earlier}",
            )
        )

    # Treatments see their patient's dates through helper columns.
    first = p.dropna(subset=["patient_key"]).drop_duplicates("patient_key").set_index("patient_key")
    for col in ("diagnosis_date", "last_followup_date"):
        t[f"patient.{col}"] = t["patient_key"].map(first[col]).astype("datetime64[ns]")
    # As in the raw suite: a helper column, not ~10^5 keys as the value_set.
    t["patient_key [known patient]"] = _in_set_or_none(t["patient_key"], set(first.index))
    tf = Frame("treatments", treatments_file, t, t.astype(str))
    for col in ("treatment", "start_date"):
        tf.checks.append(
            Check(
                "ExpectColumnValuesToNotBeNull",
                {"column": col},
                "required",
                col,
                col,
                value_columns=(col,),
            )
        )
    tf.checks.append(
        Check(
            "ExpectColumnValuesToNotBeNull",
            {"column": "patient_key"},
            "unknown_patient",
            "patient_key",
            "patient_key",
            details="the treatment's patient could not be identified",
        )
    )
    tf.checks.append(
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "patient_key [known patient]", "value_set": [True]},
            "unknown_patient",
            "patient_key",
            "patient_key",
            value_columns=("patient_key",),
            details="a patient_key of the site's patients",
        )
    )
    tf.checks.append(
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "treatment", "value_set": list(cdm.TREATMENT_CODES)},
            "code_set",
            "treatment",
            "treatment",
            value_columns=("treatment",),
            details=f"{list(cdm.TREATMENT_CODES)}",
        )
    )
    tf.checks.append(
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": "line", "min_value": 1, "max_value": 10},
            "range",
            "line",
            "line",
            value_columns=("line",),
            details="[1, 10]",
        )
    )
    for col in ("start_date", "end_date"):
        tf.checks.append(_date_window(col, lo_d, hi_d))
    for later, earlier, rule in (
        ("end_date", "start_date", "treatment_end_after_start"),
        ("start_date", "patient.diagnosis_date", "treatment_after_diagnosis"),
        ("patient.last_followup_date", "start_date", "last_followup_after_treatment"),
    ):
        col = earlier if later.startswith("patient.") else later
        tf.checks.append(
            Check(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": later,
                    "column_B": earlier,
                    "or_equal": True,
                    "ignore_row_if": "either_value_is_missing",
                },
                rule,
                col,
                col,
                value_columns=(later, earlier),
                details=f"{later} >= {earlier}",
            )
        )
    return [pf, tf]


def date_rule(later: str, earlier: str) -> str:
    """Rule name of a date-order check, e.g. ``death_after_diagnosis``."""
    return f"{later.removesuffix('_date')}_after_{earlier.removesuffix('_date')}"


def _date_window(col: str, lo: pd.Timestamp, hi: pd.Timestamp) -> Check:
    return Check(
        "ExpectColumnValuesToBeBetween",
        {"column": col, "min_value": lo.to_pydatetime(), "max_value": hi.to_pydatetime()},
        "date_plausible",
        col,
        col,
        value_columns=(col,),
        details=f"{lo.date()} .. {hi.date()}",
    )


# ---------------------------------------------------------------------------
# Running a suite


def run_suite(site: str, stage: str, frames: list[Frame]) -> pd.DataFrame:
    """Validate every frame with great-expectations; one results row per check.

    Returns
    -------
    DataFrame
        :data:`RESULT_COLUMNS`, in the order the checks were built.
    """
    import great_expectations as gx
    import great_expectations.expectations as gxe

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    context = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context.variables.progress_bars = ProgressBarsConfig(globally=False)
    except (ImportError, AttributeError):  # pragma: no cover - older/newer GX layouts
        pass
    source = context.data_sources.add_pandas(f"{site}_{stage}")
    rows = []
    for frame in frames:
        by_check = {}
        for part, (cols, members) in enumerate(_batches(frame)):
            name = frame.table if cols is None else f"{frame.table}.{part}"
            asset = source.add_dataframe_asset(name)
            batch_def = asset.add_batch_definition_whole_dataframe("whole")
            suite = gx.ExpectationSuite(name=f"{site}.{stage}.{name}")
            for i in members:
                check = frame.checks[i]
                cls = getattr(gxe, check.expectation)
                suite.add_expectation(cls(**check.kwargs, meta={"pannet_check": i}))
            suite = context.suites.add(suite)
            df = frame.data if cols is None else frame.data[cols]
            batch = batch_def.get_batch(batch_parameters={"dataframe": df})
            result = batch.validate(suite, result_format="COMPLETE")
            by_check.update({r.expectation_config.meta["pannet_check"]: r for r in result.results})
        source_rows = frame.data["source_row"].to_numpy()
        for i, check in enumerate(frame.checks):
            r = by_check[i]
            res = r.result or {}
            idx = list(res.get("unexpected_index_list") or [])
            exc = r.exception_info or {}
            raised = bool(exc.get("raised_exception")) if isinstance(exc, dict) else False
            details = check.details
            if raised:
                details = (
                    f"{details}; expectation raised: {str(exc.get('exception_message'))[:200]}"
                )
            failing = [int(source_rows[j]) for j in idx]
            values = [_value_text(frame, check, j) for j in idx]
            rows.append(
                {
                    "site": site,
                    "stage": stage,
                    "file": frame.file,
                    "table": frame.table,
                    "column": check.column,
                    "cdm_column": check.cdm_column,
                    "expectation": _snake(check.expectation),
                    "rule": check.rule,
                    "success": bool(r.success) and not raised,
                    "n_rows": int(res.get("element_count", len(frame.data)) or len(frame.data)),
                    "n_failing": len(failing) if failing or not raised else len(frame.data),
                    "failing_rows": failing,
                    "failing_values": values,
                    "details": details,
                }
            )
    return _typed(pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), RESULT_COLUMNS)


def _in_set_or_none(values: pd.Series, known: set) -> pd.Series:
    """True/False whether each value is in ``known``; None where the value is missing
    (GX skips missing values in a value-set expectation, as for the column itself)."""
    ok = values.isin(known).to_numpy()
    return pd.Series(
        np.where(values.isna().to_numpy(), None, ok).astype(object), index=values.index
    )


# From this many rows a table is validated one column (or column pair) at a time: GX
# copies the whole batch frame for each expectation's domain, so a wide table cost
# rows x columns x expectations; smaller tables keep one batch (GX's per-batch overhead).
NARROW_MIN_ROWS = 20_000
_COLUMN_KWARGS = ("column", "column_A", "column_B")


def _batches(frame: Frame) -> list[tuple[list[str] | None, list[int]]]:
    """(columns or None for the whole frame, check positions) of each GX batch."""
    if len(frame.data) < NARROW_MIN_ROWS:
        return [(None, list(range(len(frame.checks))))]
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, check in enumerate(frame.checks):
        cols = tuple(
            c
            for k in _COLUMN_KWARGS
            if (c := check.kwargs.get(k)) is not None and c in frame.data.columns
        )
        groups.setdefault(cols, []).append(i)
    return [(list(cols), members) for cols, members in groups.items()]


def _value_text(frame: Frame, check: Check, j: int) -> str:
    if check.redact:
        return REDACTED
    cols = check.value_columns or ((check.column,) if check.column in frame.raw else ())
    vals = []
    for c in cols:
        v = frame.raw.at[j, c] if c in frame.raw else frame.data.at[j, c]
        v = "" if v is None else str(v)
        if v.endswith(" 00:00:00"):
            v = v[: -len(" 00:00:00")]
        vals.append(v if len(cols) == 1 else f"{c}={v}")
    return "; ".join(vals)


def _snake(name: str) -> str:
    out = []
    for ch in name:
        if ch.isupper() and out:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _typed(df: pd.DataFrame, schema: dict[str, str]) -> pd.DataFrame:
    for col, dtype in schema.items():
        if dtype != "object":
            df[col] = df[col].astype(dtype)
    return df


# ---------------------------------------------------------------------------
# Quarantine


def quarantine_from_results(results: pd.DataFrame) -> pd.DataFrame:
    """One quarantine row per failing row of every failed row-level expectation."""
    rows = []
    for r in results.itertuples(index=False):
        if r.success or r.rule == "column_exists":
            continue
        for src, val in zip(r.failing_rows, r.failing_values, strict=True):
            rows.append(
                {
                    "site": r.site,
                    "file": r.file,
                    "table": r.table,
                    "source_row": src,
                    "column": r.column,
                    "cdm_column": r.cdm_column,
                    "value": val,
                    "rule": r.rule,
                    "stage": r.stage,
                    "message": f"{RULE_TEXT.get(r.rule, r.rule)}: expected, but not so ({r.expectation}"
                    + (f"; {r.details}" if r.details else "")
                    + ")",
                }
            )
    return _typed(pd.DataFrame(rows, columns=list(QUARANTINE_COLUMNS)), QUARANTINE_COLUMNS)


def combine_quarantine(*parts: pd.DataFrame) -> pd.DataFrame:
    """Union of quarantine rows; one row per (table, source_row, cdm_column, rule).

    Parts earlier in the argument list win, so pass the raw-suite rows first (they quote
    the raw column and value).
    """
    frames = [p[list(QUARANTINE_COLUMNS)] for p in parts if len(p)]
    if not frames:
        return _typed(pd.DataFrame(columns=list(QUARANTINE_COLUMNS)), QUARANTINE_COLUMNS)
    q = pd.concat(frames, ignore_index=True)
    key = q["cdm_column"].fillna(q["column"])
    q = q.loc[
        ~pd.DataFrame(
            {"t": q["table"], "r": q["source_row"], "c": key, "u": q["rule"]}
        ).duplicated()
    ]
    # A CDM-stage failure on a cell already flagged upstream (e.g. `required` after an
    # unknown code became NA) is a consequence, not a second defect: keep the root cause.
    key = q["cdm_column"].fillna(q["column"])
    cell = pd.Series(list(zip(q["table"], q["source_row"], key, strict=True)), index=q.index)
    upstream = set(cell[q["stage"] != "cdm"])
    q = q.loc[~((q["stage"] == "cdm") & cell.isin(upstream))]
    q = q.sort_values(["table", "source_row", "column", "rule"], kind="stable", ignore_index=True)
    return _typed(q, QUARANTINE_COLUMNS)


def quarantine_share(quarantine: pd.DataFrame, n_rows: dict[str, int]) -> dict[str, float]:
    """Share of each table's rows with at least one quarantine row."""
    out = {}
    for table, n in n_rows.items():
        k = quarantine.loc[quarantine["table"] == table, "source_row"].nunique()
        out[table] = k / n if n else 0.0
    return out


class QuarantineLimitError(RuntimeError):
    """Too much of a site's data is invalid (or ``on_invalid: fail``): stop the run."""


def enforce_policy(
    site: str,
    quarantine: pd.DataFrame,
    n_rows: dict[str, int],
    *,
    on_invalid: str,
    max_share: float,
) -> None:
    """Raise :class:`QuarantineLimitError` with a located message when the policy says stop."""
    if quarantine.empty:
        return
    first = quarantine.iloc[0]
    where = (
        f"first: file '{first['file']}', row {first['source_row']}, column '{first['column']}', "
        f"value '{first['value']}', rule {first['rule']}"
    )
    if on_invalid == "fail":
        raise QuarantineLimitError(
            f"site '{site}': {len(quarantine)} invalid value(s) and validation.on_invalid is "
            f"'fail'; {where}. Fix the export (or set validation.on_invalid: quarantine)."
        )
    shares = quarantine_share(quarantine, n_rows)
    for table, share in shares.items():
        if share > max_share:
            k = quarantine.loc[quarantine["table"] == table, "source_row"].nunique()
            raise QuarantineLimitError(
                f"site '{site}': {k} of {n_rows[table]} {table} rows ({share:.1%}) break a "
                f"row-level rule, more than validation.max_quarantine_share = {max_share:.1%}; "
                f"{where}. Fix the export or its data dictionary."
            )


# ---------------------------------------------------------------------------
# Offline HTML summary ("Data Docs")

_CSS = """
body{font-family:system-ui,Segoe UI,Helvetica,Arial,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#eee}.ok{color:#1a7f37}.bad{color:#b42318;
font-weight:600}.banner{background:#fff3cd;border:1px solid #e0c060;padding:6px 10px;
margin-bottom:1em}
"""


def render_html(
    results: pd.DataFrame, *, title: str, synthetic: bool, max_rows_shown: int = 20
) -> str:
    """A self-contained HTML page (inline CSS, no scripts) summarising a results table."""
    n_bad = int((~results["success"]).sum())
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    if synthetic:
        parts.append(
            "<div class='banner'>SYNTHETIC DATA - made from the synthetic demo cohort.</div>"
        )
    parts.append(f"<h1>{html.escape(title)}</h1>")
    parts.append(
        f"<p>{len(results)} expectations (great-expectations), {len(results) - n_bad} met, "
        f"{n_bad} not met. Failing rows are the 1-based data rows of the file.</p>"
    )
    for (file, table), g in results.groupby(["file", "table"], sort=False):
        parts.append(f"<h2>{html.escape(str(table))}: {html.escape(str(file))}</h2>")
        parts.append(
            "<table><tr><th>column</th><th>rule</th><th>expectation</th><th>details</th>"
            "<th>result</th><th>failing rows (value)</th></tr>"
        )
        for r in g.itertuples(index=False):
            cls, word = (
                ("ok", "met") if r.success else ("bad", f"{r.n_failing} of {r.n_rows} rows fail")
            )
            shown = [
                f"{row} ({html.escape(str(v))})"
                for row, v in list(zip(r.failing_rows, r.failing_values, strict=True))[
                    :max_rows_shown
                ]
            ]
            more = len(r.failing_rows) - len(shown)
            if more > 0:
                shown.append(f"... {more} more")
            parts.append(
                f"<tr><td>{html.escape(str(r.column))}</td><td>{html.escape(str(r.rule))}</td>"
                f"<td>{html.escape(str(r.expectation))}</td><td>{html.escape(str(r.details or ''))}</td>"
                f"<td class='{cls}'>{word}</td><td>{', '.join(shown)}</td></tr>"
            )
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------------------
# One site, end to end (what the workflow scripts call)


def validate_raw_site(site: str, site_cfg: dict, dictionary_path: str) -> pd.DataFrame:
    """Read one site's export and run its raw suite; return the results table.

    Raises
    ------
    pannet.sites.StructuralError
        The export cannot be read as its dictionary says (the run must stop).
    """
    from pannet.sites import load_dictionary, read_raw

    dictionary = load_dictionary(dictionary_path)
    raw = read_raw(site, site_cfg, dictionary)
    return run_suite(site, "raw", raw_frames(site, raw, dictionary))


def raw_column(dictionary: dict, cdm_column: str) -> str:
    """The export's column behind a CDM column (the CDM name when none: derived or key)."""
    for table in ("patients", "treatments"):
        spec = dictionary[table]["columns"].get(cdm_column)
        if spec and "source" in spec and spec.get("derive") is None:
            return spec["source"]
    return cdm_column


def site_files(site_cfg: dict, dictionary: dict) -> dict[str, str]:
    """Table -> the file it is read from, as quarantine rows name it."""
    from pathlib import Path

    return {
        table: str(
            Path(site_cfg["data_dir"]) / dictionary["files"][dictionary[table]["file"]]["path"]
        )
        for table in ("patients", "treatments")
    }


def validate_cdm_site(
    site: str,
    site_cfg: dict,
    dictionary_path: str,
    *,
    patients: str,
    treatments: str,
    issues: str,
    raw_results: str,
    earliest_date: str = "1900-01-01",
    latest_date: str = "2030-12-31",
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Run the CDM suite on one site's harmonised tables and build its quarantine.

    Returns
    -------
    results : DataFrame
        :data:`RESULT_COLUMNS`, stage ``cdm``.
    quarantine : DataFrame
        :data:`QUARANTINE_COLUMNS`: raw-suite failures, mapping issues and CDM-suite
        failures, one row per (table, row, column, rule).
    n_rows : dict
        Rows per table (the denominators of the quarantine share).
    """
    from pannet.io import read_parquet
    from pannet.sites import load_dictionary

    dictionary = load_dictionary(dictionary_path)
    files = site_files(site_cfg, dictionary)
    p = read_parquet(patients)
    t = read_parquet(treatments)
    frames = cdm_frames(
        p,
        t,
        patients_file=files["patients"],
        treatments_file=files["treatments"],
        earliest_date=earliest_date,
        latest_date=latest_date,
    )
    results = run_suite(site, "cdm", frames)
    cdm_q = quarantine_from_results(results)
    cdm_q["column"] = cdm_q["cdm_column"].map(lambda c: raw_column(dictionary, c)).astype("string")
    quarantine = combine_quarantine(
        quarantine_from_results(read_parquet(raw_results)), read_parquet(issues), cdm_q
    )
    return results, quarantine, {"patients": len(p), "treatments": len(t)}
