"""Journal tables: one Parquet table rendered as HTML, DOCX, LaTeX and Markdown.

The numbers come from the table's Parquet artefact only; this module formats them once
(:func:`display_frame`) and hands the same strings to each kept library: great-tables
for HTML and LaTeX, python-docx for the Word table, pandas/tabulate for Markdown. Every
file is written atomically with a provenance sidecar, and is byte-reproducible (fixed
table ids, fixed DOCX zip and core-property dates).
"""

from __future__ import annotations

import io
import math
import os
import re
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from pannet.contingency import format_p as _format_p
from pannet.table1 import LABELS as TABLE1_LABELS
from pannet.table2 import LABELS as TABLE2_LABELS

FORMATS = ("html", "docx", "tex", "md")
SUFFIX = {"html": ".html", "docx": ".docx", "tex": ".tex", "md": ".md"}

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA: made from the generated demo cohort, not from the study's patients. "
    "Numbers check the pipeline, not the clinical question."
)

TITLES = {
    "table1": "Table 1. Baseline characteristics by group, before and after propensity score matching",
    "table2": "Table 2. Treatments for systemic disease in the matched cohort",
    "surgery": "Surgical outcomes in the surgery group",
}

# Display labels of known keys: the Table 1 and Table 2 stages' own labels (used when a
# frame carries variable keys but no label column), and the surgical-outcome measures.
LABELS = {
    **TABLE1_LABELS,
    **TABLE2_LABELS,
    "distal_pancreatectomy": "Distal pancreatectomy",
    "pancreaticoduodenectomy": "Pancreaticoduodenectomy (Whipple)",
    "central_pancreatectomy": "Central pancreatectomy",
    "enucleation": "Enucleation",
    "total_pancreatectomy": "Total pancreatectomy",
    "resection_type": "Type of resection",
    "clavien_dindo": "Complications, Clavien-Dindo grade",
    "mortality_90d": "90-day mortality",
}

GROUP_COLUMNS = ("variable", "characteristic", "section", "category")
ROW_COLUMNS = ("level", "treatment", "outcome", "item", "label", "row")
# Columns the renderer never shows (internal keys and sort orders).
HIDDEN = {"order", "sort", "row_order", "level_order", "variable_order"}


def _kind(name: str) -> str:
    n = name.lower()
    if (
        n in {"p", "pvalue", "p_value"}
        or n.startswith(("p_", "p-"))
        or n.endswith(("_p", "_pvalue"))
    ):
        return "p"
    if "smd" in n:
        return "smd"
    if "pct" in n or "percent" in n or n.endswith("%"):
        return "pct"
    return "num"


def format_p(p) -> str:
    """A p-value as journals print it: '<0.001' or three decimals (as Table 1 and 2 do)."""
    if p is None:
        return ""
    return _format_p(float(p))


def format_value(value, kind: str = "num") -> str:
    """One cell as printed: ints plain, p-values by :func:`format_p`, other floats 1 dp."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        if kind == "p":
            return format_p(value)
        if float(value).is_integer() and kind == "num":
            return str(int(value))
        return f"{float(value):.1f}"
    if isinstance(value, (bool, np.bool_)):
        return "Yes" if value else "No"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    return str(value)


def label(key) -> str:
    """Display label of a variable / column key."""
    s = str(key)
    return LABELS.get(s, s.replace("_", " ") if "_" in s and " " not in s else s)


def display_frame(df):
    """The table as display strings, with its row-name and group columns.

    Returns
    -------
    (pandas.DataFrame, str or None, str or None)
        All-string frame (columns relabelled), the row-name column and the group column.
    """
    import pandas as pd

    df = journal_view(df)
    group = next((c for c in GROUP_COLUMNS if c in df.columns), None)
    row = next((c for c in ROW_COLUMNS if c in df.columns and c != group), None)
    out = pd.DataFrame(index=range(len(df)))
    for col in df.columns:
        if col in HIDDEN:
            continue
        kind = _kind(str(col))
        values = df[col].tolist()
        if col in (group, row):
            out[col] = [label(v) if v is not None and str(v) != "<NA>" else "" for v in values]
        else:
            out[col] = [format_value(v, kind) for v in values]
    rename = {c: label(c) for c in out.columns if c not in (group, row)}
    return out.rename(columns=rename), row, group


def _n_pct(n, pct) -> str:
    import pandas as pd

    if pd.isna(n):
        return ""
    return f"{int(n)}" if pd.isna(pct) else f"{int(n)} ({float(pct):.1f})"


def journal_view(df):
    """The printed layout of a known table schema; other frames pass through unchanged.

    ``table1`` (:data:`pannet.table1.TABLE1_SCHEMA`): n (%) per group before and after
    matching, p (printed once per variable) and |SMD| x 100; ``table2`` (n_SG, pct_SG,
    ...): n (%) per group, test and p; ``surgery`` (measure, level, population, group,
    n, pct): n (%) and p.
    """
    import pandas as pd

    cols = set(df.columns)
    if {"before_sg", "before_nonsg", "after_sg", "after_nonsg", "label", "level"} <= cols:
        d = df.sort_values("row") if "row" in cols else df
        first = (
            d["first_in_variable"].fillna(False).astype(bool)
            if "first_in_variable" in cols
            else True
        )
        p = d["p_text"] if "p_text" in cols else d["p_value"].map(format_p)
        return pd.DataFrame(
            {
                "variable": d["label"].astype(str),
                "level": d["level"].fillna("").astype(str),
                "SG before, n (%)": d["before_sg"].fillna("").astype(str),
                "non-SG before, n (%)": d["before_nonsg"].fillna("").astype(str),
                "p before": p.fillna("").astype(str).where(first, ""),
                "SMD before": d["before_smd"].map(lambda v: format_value(v, "smd")),
                "SG after, n (%)": d["after_sg"].fillna("").astype(str),
                "non-SG after, n (%)": d["after_nonsg"].fillna("").astype(str),
                "SMD after": d["after_smd"].map(lambda v: format_value(v, "smd")),
            }
        ).reset_index(drop=True)
    if {"n_SG", "pct_SG", "n_nonSG", "pct_nonSG"} <= cols:
        p = df["p_text"] if "p_text" in cols else df["p"].map(format_p)
        return pd.DataFrame(
            {
                "treatment": (df["label"] if "label" in cols else df["variable"].map(label)).astype(
                    str
                ),
                "SG, n (%)": [_n_pct(n, q) for n, q in zip(df["n_SG"], df["pct_SG"], strict=True)],
                "non-SG, n (%)": [
                    _n_pct(n, q) for n, q in zip(df["n_nonSG"], df["pct_nonSG"], strict=True)
                ],
                "test": df["test"].astype(str) if "test" in cols else "",
                "p": p.fillna("").astype(str),
            }
        )
    if {"measure", "level", "n", "pct"} <= cols:
        out = pd.DataFrame(
            {
                "variable": df["measure"].map(label).astype(str),
                "level": df["level"].fillna("").map(label).astype(str),
                "population": df["population"].astype(str) if "population" in cols else "",
                "group": df["group"].astype(str) if "group" in cols else "",
                "n (%)": [_n_pct(n, q) for n, q in zip(df["n"], df["pct"], strict=True)],
                "p": (df["p_text"] if "p_text" in cols else df["p"].map(format_p))
                .fillna("")
                .astype(str),
            }
        )
        return out.rename(columns={"group": "arm"})
    return df


def _gt(df, *, table_id: str, title: str, synthetic: bool, notes: Iterable[str] = ()):
    from great_tables import GT

    disp, row, group = display_frame(df)
    gt = GT(disp, rowname_col=row, groupname_col=group, id=table_id)
    gt = gt.tab_header(title=title, subtitle="SYNTHETIC DATA" if synthetic else None)
    if row:
        gt = gt.tab_stubhead(label=label(row))
    for note in ([SYNTHETIC_BANNER] if synthetic else []) + list(notes):
        gt = gt.tab_source_note(note)
    return gt


def table_html_fragment(
    df, *, table_id: str, title: str, synthetic: bool = False, notes: Iterable[str] = ()
) -> str:
    """The great-tables HTML of one table (a ``<div>`` with its own scoped ``<style>``)."""
    return _gt(df, table_id=table_id, title=title, synthetic=synthetic, notes=notes).as_raw_html()


def _html_page(fragment: str, title: str, synthetic: bool) -> str:
    from html import escape

    banner = (
        f'<p style="background:#b00020;color:#fff;padding:8px;font-weight:bold">'
        f"{escape(SYNTHETIC_BANNER)}</p>"
        if synthetic
        else ""
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body>{banner}{fragment}</body></html>\n"
    )


def _fixed_time():
    from datetime import UTC, datetime

    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "315532800"))  # 1980-01-01
    return datetime.fromtimestamp(max(epoch, 315532800), UTC)


def docx_bytes(df, *, title: str, synthetic: bool = False, notes: Iterable[str] = ()) -> bytes:
    """The table as a Word document (python-docx), with fixed dates so bytes reproduce."""
    from docx import Document
    from docx.shared import Pt

    disp, row, group = display_frame(df)
    doc = Document()
    when = _fixed_time().replace(tzinfo=None)
    doc.core_properties.created = when
    doc.core_properties.modified = when
    doc.core_properties.last_printed = when
    doc.core_properties.revision = 1
    doc.core_properties.author = "pannet"
    doc.core_properties.last_modified_by = "pannet"
    doc.core_properties.title = title
    if synthetic:
        p = doc.add_paragraph()
        r = p.add_run(SYNTHETIC_BANNER)
        r.bold = True
    doc.add_heading(title, level=2)
    body_cols = [c for c in disp.columns if c not in (group, row)]
    first = [row] if row else []
    header = [label(row) if row else "", *body_cols] if row else body_cols
    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = str(text)
        for run in cell.paragraphs[0].runs:
            run.bold = True
    last_group = None
    for _, rec in disp.iterrows():
        if group and rec[group] != last_group:
            last_group = rec[group]
            gcells = table.add_row().cells
            merged = gcells[0].merge(gcells[-1]) if len(gcells) > 1 else gcells[0]
            merged.text = str(last_group)
            for run in merged.paragraphs[0].runs:
                run.bold = True
        cells = table.add_row().cells
        for cell, col in zip(cells, [*first, *body_cols], strict=True):
            cell.text = str(rec[col])
    for r in table.rows:
        for c in r.cells:
            for par in c.paragraphs:
                for run in par.runs:
                    run.font.size = Pt(9)
    for note in notes:
        doc.add_paragraph(note)
    buf = io.BytesIO()
    doc.save(buf)
    return _normalise_zip(buf.getvalue())


def _normalise_zip(data: bytes) -> bytes:
    """Rewrite a zip with fixed member times and order (reproducible DOCX bytes)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    t = _fixed_time()
    stamp = (t.year, t.month, t.day, t.hour, t.minute, t.second)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            zi = zipfile.ZipInfo(info.filename, date_time=stamp)
            zi.compress_type = zipfile.ZIP_DEFLATED
            zi.external_attr = 0o644 << 16
            dst.writestr(zi, src.read(info.filename))
    return out.getvalue()


def latex_text(df, *, table_id: str, title: str, synthetic: bool = False, notes=()) -> str:
    """The table as a LaTeX ``table`` (great-tables; needs booktabs and caption)."""
    return _gt(df, table_id=table_id, title=title, synthetic=synthetic, notes=notes).as_latex()


def markdown_text(df, *, title: str, synthetic: bool = False, notes: Iterable[str] = ()) -> str:
    """The table as a GitHub-flavoured Markdown pipe table (pandas + tabulate)."""
    disp, row, group = display_frame(df)
    cols = [c for c in (group, row) if c] + [c for c in disp.columns if c not in (group, row)]
    disp = disp[cols].rename(columns={c: label(c) for c in (group, row) if c})
    if group:
        # print a group's label on its first row only, as in the paper
        g = disp[label(group)]
        disp[label(group)] = g.where(g.ne(g.shift()), "")
    parts = [f"**{title}**", ""]
    if synthetic:
        parts += [f"> {SYNTHETIC_BANNER}", ""]
    # strings as formatted: tabulate would re-parse "16.0" as 16
    parts.append(disp.to_markdown(index=False, tablefmt="github", disable_numparse=True))
    parts += [""] + [f"{n}  " for n in notes]
    return "\n".join(parts).rstrip() + "\n"


def render_table(
    df,
    stem: str | os.PathLike,
    *,
    name: str,
    title: str | None = None,
    synthetic: bool = False,
    formats: Iterable[str] = FORMATS,
    notes: Iterable[str] = (),
    rule: str = "render_tables",
    inputs: Iterable[str | os.PathLike] | Mapping = (),
    params: Mapping | None = None,
) -> list[Path]:
    """Write ``<stem>.{html,docx,tex,md}`` from one table, each atomically with a sidecar.

    Parameters
    ----------
    df : pandas.DataFrame
        The table as stored in its Parquet artefact.
    stem : path
        Output path without suffix, e.g. ``results/report/tables/table1``.
    name : str
        Table key (``table1``, ``table2``, ``surgery``): default title and HTML id.
    synthetic : bool
        Add the synthetic-data banner and note (``study.synthetic``).
    formats : iterable of {'html', 'docx', 'tex', 'md'}
    """
    from pannet.io import write_atomic, write_sidecar

    title = title or TITLES.get(name, label(name))
    table_id = re.sub(r"[^a-z0-9_]", "_", name.lower())
    notes = list(notes)
    written = []
    for fmt in formats:
        if fmt not in SUFFIX:
            raise ValueError(f"render_table: unknown format {fmt!r}; choose from {FORMATS}")
        path = Path(f"{os.fspath(stem)}{SUFFIX[fmt]}")
        if fmt == "html":
            frag = table_html_fragment(
                df, table_id=table_id, title=title, synthetic=synthetic, notes=notes
            )
            text = _html_page(frag, title, synthetic)
            write_atomic(path, lambda p, t=text: p.write_text(t, encoding="utf-8"))
        elif fmt == "docx":
            data = docx_bytes(df, title=title, synthetic=synthetic, notes=notes)
            write_atomic(path, lambda p, d=data: p.write_bytes(d))
        elif fmt == "tex":
            text = latex_text(df, table_id=table_id, title=title, synthetic=synthetic, notes=notes)
            write_atomic(path, lambda p, t=text: p.write_text(t, encoding="utf-8"))
        else:
            text = markdown_text(df, title=title, synthetic=synthetic, notes=notes)
            write_atomic(path, lambda p, t=text: p.write_text(t, encoding="utf-8"))
        write_sidecar(path, rule=rule, inputs=inputs, params={"format": fmt, **(params or {})})
        written.append(path)
    return written
