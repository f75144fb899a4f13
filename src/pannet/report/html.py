"""HTML pieces of the study report: inlined images, plain tables and the page template.

Everything is inline (CSS in a ``<style>`` element, images as base64 ``data:`` URIs), so
the report opens offline and makes no request.
"""

from __future__ import annotations

import base64
from html import escape
from pathlib import Path

MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}

CSS = """
body{font-family:-apple-system,'Segoe UI',Roboto,Arial,sans-serif;margin:0 auto;max-width:1100px;
padding:0 16px 40px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-top:.6em}h2{border-bottom:2px solid #ccc;padding-bottom:3px;margin-top:1.8em}
.banner{background:#b00020;color:#fff;padding:10px 14px;font-weight:bold;position:sticky;top:0;z-index:9}
.note{background:#fff6d6;border-left:4px solid #e0b000;padding:6px 10px;margin:8px 0}
.omitted{background:#eee;border-left:4px solid #888;padding:6px 10px;color:#444}
.fail{color:#b00020;font-weight:bold}.pass{color:#1b7f3b}
table.plain{border-collapse:collapse;font-size:.85em;margin:8px 0}
table.plain th,table.plain td{border:1px solid #ccc;padding:3px 6px;text-align:right}
table.plain th{background:#f2f2f2}table.plain td.l,table.plain th.l{text-align:left}
tr.flag td{background:#fde7ea}
figure{margin:12px 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
footer{margin-top:40px;font-size:.8em;color:#555;border-top:1px solid #ccc}
footer code{word-break:break-all}
nav a{margin-right:10px}
"""


def data_uri(path: str | Path) -> str:
    """A file as a ``data:`` URI (base64)."""
    p = Path(path)
    mime = MIME.get(p.suffix.lower(), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(p.read_bytes()).decode('ascii')}"


def figure(path: str | Path, caption: str) -> str:
    """An inlined ``<figure>``."""
    return (
        f'<figure><img alt="{escape(caption)}" src="{data_uri(path)}">'
        f"<figcaption>{escape(caption)} <small>({escape(Path(path).name)})</small></figcaption></figure>"
    )


def _cell(v, floatfmt: str) -> str:
    import math

    import numpy as np

    if isinstance(v, (list, tuple, np.ndarray)):
        return ", ".join(_cell(x, floatfmt) for x in v)
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else floatfmt.format(v)
    if v is None or str(v) in ("<NA>", "nan", "NaT"):
        return ""
    return str(v)


def plain_table(df, *, flag_rows=None, left=None, right=None, floatfmt: str = "{:.3g}") -> str:
    """A small HTML table of a DataFrame (strings escaped; rows in ``flag_rows`` highlighted).

    Text columns (and those named in ``left``) are left-aligned, numbers (and text
    columns named in ``right``, e.g. formatted estimates) right-aligned; list cells are
    joined with commas.
    """
    import pandas as pd

    left = set(left or []) | {
        c
        for c in df.columns
        if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))
    }
    left -= set(right or [])
    flag_rows = set(flag_rows or [])
    head = "".join(
        f'<th class="{"l" if c in left else ""}">{escape(str(c))}</th>' for c in df.columns
    )
    body = []
    for i, rec in enumerate(df.itertuples(index=False)):
        cells = []
        for c, v in zip(df.columns, rec, strict=True):
            cls = "l" if c in left else ""
            cells.append(f'<td class="{cls}">{escape(_cell(v, floatfmt))}</td>')
        body.append(f'<tr class="{"flag" if i in flag_rows else ""}">{"".join(cells)}</tr>')
    return (
        f'<table class="plain"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def omitted(what: str, why: str) -> str:
    """The visible note of a section left out."""
    return f'<p class="omitted">Omitted: {escape(what)} &mdash; {escape(why)}</p>'


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title><style>{{ css }}</style></head>
<body>
{% if synthetic %}<div class="banner" id="synthetic-banner">{{ banner }}</div>{% endif %}
<h1>{{ title }}</h1>
<p>{{ study }}</p>
<nav>{% for s in sections %}<a href="#{{ s.id }}">{{ s.title }}</a>{% endfor %}</nav>
{% for s in sections %}
<section id="{{ s.id }}" data-present="{{ 'yes' if s.present else 'no' }}">
<h2>{{ s.title }}</h2>
{{ s.body }}
</section>
{% endfor %}
<footer id="provenance"><h2>Provenance</h2>{{ footer }}</footer>
</body></html>
"""


def render_page(
    *, title: str, study: str, synthetic: bool, banner: str, sections, footer: str
) -> str:
    """The whole report page (jinja2, autoescaped; section bodies are trusted HTML)."""
    from jinja2 import Environment
    from markupsafe import Markup

    env = Environment(autoescape=True, trim_blocks=False)
    tpl = env.from_string(PAGE)
    secs = [
        {"id": s.id, "title": s.title, "present": s.present, "body": Markup(s.body)}
        for s in sections
    ]
    return tpl.render(
        title=title,
        study=study,
        synthetic=synthetic,
        banner=banner,
        css=Markup(CSS),
        sections=secs,
        footer=Markup(footer),
    )
