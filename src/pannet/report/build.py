"""Assemble the study report from the artefacts present.

Each section reads only its own artefacts; when they are not configured or not present
the section stays in the page with a visible "Omitted" note, never with made-up numbers.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path

from pannet.report import html as H
from pannet.report.inputs import ReportInputs, classify
from pannet.report.methods import methods_paragraphs

FIGURE_CAPTIONS = {
    "flow": "Study flow (attrition)",
    "love": "Covariate balance before and after matching (Love plot, |SMD| x 100)",
    "overlap": "Propensity score overlap by group",
    "os": "Overall survival by group (Figure 2)",
    "pfs": "Progression-free survival by group",
    "sensitivity": "Sensitivity analysis",
    "immortal": "Immortal-time contrast",
    "diagnostics": "Diagnostic figure",
    "other": "Figure",
}
FAIL_WORDS = {"fail", "failed", "false", "error", "violated", "warn", "warning"}


@dataclass
class Section:
    id: str
    title: str
    body: str
    present: bool = True


def _read(path):
    from pannet.io import read_parquet

    return None if path is None else read_parquet(path)


def _figures(inp: ReportInputs, roles) -> str:
    out = []
    for role in roles:
        for p in inp.figures.get(role, []):
            out.append(H.figure(p, FIGURE_CAPTIONS.get(role, "Figure")))
    return "".join(out)


def _gt_table(path, name: str, synthetic: bool) -> str:
    from pannet.render import TITLES, table_html_fragment

    df = _read(path)
    return table_html_fragment(
        df, table_id=f"report_{name}", title=TITLES.get(name, name), synthetic=synthetic
    )


def _failing(diag) -> object:
    """Rows of the diagnostics table whose check failed."""
    import pandas as pd

    if diag is None or diag.empty:
        return diag
    for col in ("passed", "pass", "ok"):
        if col in diag.columns:
            return diag[~diag[col].fillna(False).astype(bool)]
    for col in ("status", "verdict", "result"):
        if col in diag.columns:
            return diag[diag[col].astype(str).str.lower().isin(FAIL_WORDS)]
    return diag.iloc[0:0] if isinstance(diag, pd.DataFrame) else diag


def _flags_for(failing, population=None, endpoint=None) -> list[str]:
    """Names of failing checks that concern (population, endpoint) (or the whole run)."""
    if failing is None or failing.empty:
        return []
    name_col = next(
        (c for c in ("check", "name", "diagnostic", "test") if c in failing.columns), None
    )
    out = []
    for _, r in failing.iterrows():
        pop_ok = "population" not in failing.columns or str(r["population"]) in (
            "",
            "nan",
            "None",
            str(population),
        )
        ep_ok = "endpoint" not in failing.columns or str(r["endpoint"]) in (
            "",
            "nan",
            "None",
            str(endpoint),
        )
        if pop_ok and ep_ok:
            out.append(str(r[name_col]) if name_col else "check")
    return sorted(set(out))


def _survival_frames(inp: ReportInputs):
    """The survival stage's per-group summaries, per-contrast tests and immortal-time table.

    The Kaplan-Meier step tables (one row per event time; the figures' data) share the
    key columns with the summaries and are not shown.
    """
    import pandas as pd

    from pannet.replication import is_survival_summary, is_survival_tests

    summaries, tests, immortal = [], [], []
    for p in inp.survival:
        if Path(p).stem.endswith("_steps"):
            continue
        df = _read(p)
        if {"design", "group", "population"} <= set(df.columns):
            immortal.append(df)
        elif is_survival_summary(df):
            summaries.append(df)
        elif is_survival_tests(df):
            tests.append(df)

    def cat(frames):
        return pd.concat(frames, ignore_index=True) if frames else None

    return cat(summaries), cat(tests), cat(immortal)


def _fmt(x, d=2) -> str:
    x = _num(x)
    return "" if math.isnan(x) else f"{x:.{d}f}"


def _fmt_p(p) -> str:
    """A p-value as the tables print it (:func:`pannet.contingency.format_p`)."""
    from pannet.contingency import format_p

    return format_p(_num(p))


POPULATIONS = {
    "all": "all eligible (before matching)",
    "matched": "matched",
    "sensitivity": "matched, without liver resection or ablation",
}
ENDPOINTS = {"os": "overall survival", "pfs": "progression-free survival"}


def _est_ci(est, lo, hi, d=2, scale=1.0) -> str:
    """'7.70 (5.47-10.74)'; empty when the estimate is missing."""
    e = _fmt(_num(est) * scale, d)
    if not e:
        return ""
    return f"{e} ({_fmt(_num(lo) * scale, d)}-{_fmt(_num(hi) * scale, d)})"


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def survival_summary_table(summary, tests, failing=None) -> str:
    """Medians (IQR), x-year survival (CI), RMST per group; log-rank, Cox HR, E-value per contrast."""
    import pandas as pd

    rows = []
    if summary is not None:
        for _, r in summary.iterrows():
            rows.append(
                {
                    "population": POPULATIONS.get(r["population"], r["population"]),
                    "endpoint": ENDPOINTS.get(r["endpoint"], r["endpoint"]),
                    "group": r["group"],
                    "n": r.get("n", ""),
                    "events": r.get("events", ""),
                    "median (IQR), years": _est_ci(r.get("median"), r.get("q25"), r.get("q75")),
                    "median 95% CI": (
                        f"{_fmt(r.get('median_lower'))}-{_fmt(r.get('median_upper'))}"
                        if "median_lower" in r.index
                        else ""
                    ),
                    "x-year survival % (CI)": (
                        f"{_fmt(r.get('horizon'), 0)} y: "
                        + _est_ci(r.get("surv"), r.get("surv_lower"), r.get("surv_upper"), 1, 100)
                    ),
                    "RMST, years": (
                        f"{_fmt(r.get('rmst'))} (to {_fmt(r.get('rmst_tau'), 0)} y)"
                        if "rmst" in r.index
                        else ""
                    ),
                }
            )
    trows, flagged = [], []
    if tests is not None:
        for _, r in tests.iterrows():
            flags = _flags_for(failing, r["population"], r["endpoint"])
            if flags:
                flagged.append(len(trows))
            trows.append(
                {
                    "population": POPULATIONS.get(r["population"], r["population"]),
                    "endpoint": ENDPOINTS.get(r["endpoint"], r["endpoint"]),
                    "log-rank p": _fmt_p(r.get("logrank_p")),
                    "Cox HR SG vs non-SG (95% CI)": (
                        _est_ci(r.get("hr"), r.get("hr_lower"), r.get("hr_upper"))
                        + (" clustered on pair" if bool(r.get("cox_clustered", False)) else "")
                        if "hr" in r.index
                        else ""
                    ),
                    "Cox p": _fmt_p(r.get("cox_p")),
                    "E-value (CI)": (
                        f"{_fmt(r.get('evalue_hr'))} ({_fmt(r.get('evalue_ci'))})"
                        if "evalue_hr" in r.index
                        else ""
                    ),
                    "diagnostics": ("FAILED: " + ", ".join(flags)) if flags else "",
                }
            )
    out = ""
    numeric_text = {
        "median (IQR), years",
        "median 95% CI",
        "x-year survival % (CI)",
        "RMST, years",
        "log-rank p",
        "Cox HR SG vs non-SG (95% CI)",
        "Cox p",
        "E-value (CI)",
    }
    if rows:
        out += H.plain_table(pd.DataFrame(rows), right=numeric_text)
    if trows:
        out += H.plain_table(pd.DataFrame(trows), right=numeric_text, flag_rows=flagged)
    return out


def immortal_time_table(df) -> str:
    """The immortal-time contrast: each population under the study's time zero and the naive
    one (everyone from the metastasis date), per group, with the contrast's log-rank and HR."""
    import pandas as pd

    if df is None or df.empty:
        return ""
    rows = []
    for _, r in df.iterrows():
        rows.append(
            {
                "population": POPULATIONS.get(r["population"], r["population"]),
                "design": r["design"],
                "time zero": r.get("time_zero", ""),
                "group": r["group"],
                "n": r.get("n", ""),
                "events": r.get("events", ""),
                "median OS, years (95% CI)": _est_ci(
                    r.get("median"), r.get("median_lower"), r.get("median_upper")
                ),
                "x-year OS % (CI)": f"{_fmt(r.get('horizon'), 0)} y: "
                + _est_ci(r.get("surv"), r.get("surv_lower"), r.get("surv_upper"), 1, 100),
                "log-rank p": _fmt_p(r.get("logrank_p")),
                "Cox HR SG vs non-SG (95% CI)": _est_ci(
                    r.get("hr"), r.get("hr_lower"), r.get("hr_upper")
                ),
            }
        )
    right = {
        "median OS, years (95% CI)",
        "x-year OS % (CI)",
        "log-rank p",
        "Cox HR SG vs non-SG (95% CI)",
    }
    return H.plain_table(pd.DataFrame(rows), right=right)


def attrition_table(att) -> str:
    """The attrition table wide: one row per step, 'remaining (removed)' per site and in total."""
    import pandas as pd

    if not {"step", "criterion", "description", "site", "removed", "remaining"} <= set(att.columns):
        return H.plain_table(att)
    sites = list(dict.fromkeys(att["site"]))
    sites = [s for s in sites if s != "all"] + (["all"] if "all" in sites else [])
    rows = []
    for (step, crit), g in att.groupby(["step", "criterion"], sort=True):
        by = g.set_index("site")
        row = {"step": int(step), "description": by["description"].iloc[0]}
        for site in sites:
            if site not in by.index:
                row[site] = ""
                continue
            r = by.loc[site]
            removed = int(r["removed"])
            row[site] = f"{int(r['remaining'])}" + (f" (-{removed})" if removed else "")
            if crit == "included" and {"sg", "non_sg"} <= set(by.columns) and not pd.isna(r["sg"]):
                row[site] += f"; SG {int(r['sg'])}, non-SG {int(r['non_sg'])}"
        rows.append(row)
    out = pd.DataFrame(rows).rename(columns={"all": "all sites"})
    cols = [c for c in out.columns if c not in ("step", "description")]
    return (
        "<p>Patients remaining after each step, by site (removed by the step in brackets).</p>"
        + H.plain_table(out, right=cols)
    )


def replication_html(rep, *, synthetic: bool) -> str:
    """Counts by section, the rows outside tolerance or not computed, then every row (folded)."""
    import pandas as pd

    from pannet.replication import COLUMNS, DEMO_NOTE

    note = f'<p class="note">{escape(DEMO_NOTE)}</p>' if synthetic else ""
    within = rep["within"]
    n_in = int(within.fillna(False).sum())
    n_out = int((within == False).sum())  # noqa: E712
    n_na = int(within.isna().sum())
    head = (
        f"<p>{len(rep)} published figures: {n_in} within tolerance, {n_out} outside, "
        f"{n_na} not computed. Tolerances (computed - published): counts max(absolute, "
        "relative x published), percentages, years, p-values and |SMD| x 100 absolute.</p>"
    )
    by = (
        rep.assign(
            outside=(within == False).astype(int),  # noqa: E712
            within_=within.fillna(False).astype(int),
            missing=within.isna().astype(int),
        )
        .groupby("section", sort=False)
        .agg(
            rows=("item", "size"),
            within=("within_", "sum"),
            outside=("outside", "sum"),
            not_computed=("missing", "sum"),
        )
        .reset_index()
        .rename(columns={"not_computed": "not computed"})
    )
    shown = rep.assign(note=rep["note"].where(rep["note"] != DEMO_NOTE, "").fillna(""))
    # the demo note is said once above; a column of it (or of nothing) is dropped
    drop = {"kind", "within", "note"}
    cols = [c for c in COLUMNS if c not in drop]
    if (shown["note"] != "").any():
        cols.append("note")
    out = shown[within == False]  # noqa: E712
    missing = shown[within.isna()]
    body = note + head + H.plain_table(by)
    if len(out):
        body += f"<h3>Outside tolerance ({len(out)})</h3>" + H.plain_table(
            out[cols], floatfmt="{:.4g}"
        )
    if len(missing):
        body += f"<h3>Not computed ({len(missing)})</h3>" + H.plain_table(
            missing[cols], floatfmt="{:.4g}"
        )
    flag = {i for i, v in enumerate(within) if not pd.isna(v) and not bool(v)}
    body += (
        f"<details><summary>All {len(rep)} rows</summary>"
        + H.plain_table(shown[[*cols, "within"]], flag_rows=flag, floatfmt="{:.4g}")
        + "</details>"
    )
    return body


def _bootstrap_table(df) -> str:
    """Observed estimate, bootstrap SE, percentile and BCa intervals per estimate."""
    import pandas as pd

    if not {"estimate", "observed", "pct_lower", "pct_upper"} <= set(df.columns):
        return H.plain_table(df)
    rows = []
    for _, r in df.iterrows():
        level = _num(r.get("conf_level", 0.95))
        rows.append(
            {
                "estimate": r["estimate"],
                "endpoint": r.get("endpoint", ""),
                "observed": _fmt(r["observed"], 3),
                "bootstrap SE": _fmt(r.get("se"), 3),
                f"percentile {100 * level:.0f}% CI": (
                    f"{_fmt(r['pct_lower'], 3)} to {_fmt(r['pct_upper'], 3)}"
                ),
                f"BCa {100 * level:.0f}% CI": (
                    f"{_fmt(r.get('bca_lower'), 3)} to {_fmt(r.get('bca_upper'), 3)}"
                    if "bca_lower" in r.index
                    else ""
                ),
                "replicates (finite)": f"{r.get('replicates', '')} ({r.get('n_finite', '')})",
                "scheme": r.get("scheme", ""),
            }
        )
    out = pd.DataFrame(rows)
    return H.plain_table(
        out, right=[c for c in out.columns if c not in ("estimate", "endpoint", "scheme")]
    )


def footer_html(inp: ReportInputs, provenance_dir: str | None = None) -> str:
    """Code version, lock-file hash, input hashes and run time."""
    from pannet import provenance as prov
    from pannet.io import sha256_file

    code = prov.code_version()
    env = prov.environment_summary()
    items = [
        f"<li>Report written: {escape(prov.now_iso())}</li>",
        f"<li>Code: pannet {escape(str(code.get('pannet')))}, git commit "
        f"<code>{escape(str(code.get('commit')))}</code>{' (uncommitted changes)' if code.get('dirty') else ''}</li>",
        f"<li>Lock file (requirements.lock) SHA-256: <code>{escape(str(env.get('lockfile_sha256')))}</code></li>",
        f"<li>Python {escape(str(env.get('python')))}; "
        + escape(", ".join(f"{k} {v}" for k, v in (env.get("packages") or {}).items() if v))
        + "</li>",
    ]
    rows = []
    for p in inp.all_paths():
        if p.exists():
            rows.append(
                f"<tr><td class='l'>{escape(str(p))}</td><td class='l'><code>{sha256_file(p)}</code></td></tr>"
            )
    table = (
        '<table class="plain"><thead><tr><th class="l">input</th><th class="l">SHA-256</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )
    extra = ""
    if provenance_dir and Path(provenance_dir).exists():
        extra = f"<p>Full provenance manifest: {escape(str(provenance_dir))}</p>"
    return f"<ul>{''.join(items)}</ul>{table}{extra}"


def build_sections(inp: ReportInputs, config: Mapping, *, synthetic: bool) -> list[Section]:
    """Every section of the report, present or omitted-with-note."""
    import pandas as pd

    S: list[Section] = []
    diag = _read(inp.diagnostics)
    failing = _failing(diag)

    # Diagnostics first: a reader sees failing checks before the estimates.
    if diag is not None:
        n_fail = 0 if failing is None else len(failing)
        head = (
            f'<p class="{"fail" if n_fail else "pass"}">{n_fail} of {len(diag)} checks failed; '
            "failing checks are also flagged beside the estimates they concern.</p>"
        )
        idx = set() if failing is None else {diag.index.get_loc(i) for i in failing.index}
        S.append(
            Section(
                "diagnostics",
                "Diagnostics",
                head
                + H.plain_table(diag.reset_index(drop=True), flag_rows=idx)
                + _figures(inp, ["diagnostics"]),
            )
        )
    else:
        S.append(
            Section(
                "diagnostics",
                "Diagnostics",
                H.omitted("diagnostics", "results/diagnostics/diagnostics.parquet not present"),
                False,
            )
        )

    # Study flow
    body = _figures(inp, ["flow"])
    att = _read(inp.attrition)
    if att is not None:
        body += attrition_table(att)
    S.append(
        Section(
            "flow",
            "Study flow",
            body or H.omitted("study flow", "attrition table and flow diagram not present"),
            bool(body),
        )
    )

    # Table 1
    if inp.table1:
        S.append(Section("table1", "Table 1", _gt_table(inp.table1, "table1", synthetic)))
    else:
        S.append(
            Section(
                "table1",
                "Table 1",
                H.omitted("Table 1", "results/tables/table1.parquet not present"),
                False,
            )
        )

    # Balance
    body = _figures(inp, ["love", "overlap"])
    bal = _read(inp.balance)
    if bal is not None:
        flag = config.get("tables", {}).get("smd_flag", 10)
        smd_cols = [
            c for c in bal.columns if "smd" in c.lower() and pd.api.types.is_numeric_dtype(bal[c])
        ]
        # balance is judged after matching: flag on the after-matching SMD when there is one
        smd_cols = [c for c in smd_cols if "after" in c.lower()] or smd_cols
        rows = set()
        for c in smd_cols:
            vals = bal[c].abs()
            scale = 100 if vals.max(skipna=True) <= 2 else 1  # SMD stored as a fraction or x 100
            rows |= {i for i, v in enumerate(vals * scale) if v > flag}
        body += (
            f"<p>Rows with |SMD| x 100 above {flag} after matching are highlighted.</p>"
            + H.plain_table(bal, flag_rows=rows)
        )
    S.append(
        Section(
            "balance",
            "Balance",
            body or H.omitted("balance", "Love plot, overlap and balance table not present"),
            bool(body),
        )
    )

    # Survival
    summary, tests, immortal = _survival_frames(inp)
    body = _figures(inp, ["os", "pfs", "sensitivity"])
    table = survival_summary_table(summary, tests, failing)
    body += table
    S.append(
        Section(
            "survival",
            "Survival",
            body or H.omitted("survival", "no survival artefacts present"),
            bool(body),
        )
    )

    # Immortal-time contrast
    body = _figures(inp, ["immortal"]) + immortal_time_table(immortal)
    if body:
        body = (
            "<p>The same comparison with everyone counted from the date of metastatic disease "
            "(the surgery group then includes the immortal time before surgery), beside the "
            "main analysis counted from each group's time zero.</p>" + body
        )
    S.append(
        Section(
            "immortal",
            "Immortal-time contrast",
            body
            or H.omitted(
                "immortal-time contrast",
                "results/survival/immortal_time.parquet not present",
            ),
            bool(body),
        )
    )

    for key, title in (("table2", "Table 2"), ("surgery", "Surgical outcomes")):
        path = getattr(inp, key)
        if path:
            S.append(Section(key, title, _gt_table(path, key, synthetic)))
        else:
            S.append(
                Section(
                    key, title, H.omitted(title, f"results/tables/{key}.parquet not present"), False
                )
            )

    boot = _read(inp.bootstrap)
    if boot is not None:
        S.append(Section("bootstrap", "Bootstrap confidence intervals", _bootstrap_table(boot)))
    else:
        reps = (config.get("bootstrap") or {}).get("replicates")
        S.append(
            Section(
                "bootstrap",
                "Bootstrap confidence intervals",
                H.omitted(
                    "bootstrap",
                    f"results/bootstrap/summary.parquet not present (bootstrap.replicates = {reps})",
                ),
                False,
            )
        )

    rep = _read(inp.replication)
    if rep is not None:
        S.append(
            Section(
                "replication",
                "Replication check against the publication",
                replication_html(rep, synthetic=synthetic),
            )
        )
    else:
        S.append(
            Section(
                "replication",
                "Replication check against the publication",
                H.omitted("replication", "results/report/replication.parquet not present"),
                False,
            )
        )

    aud = _read(inp.audit)
    if aud is not None:
        bad = aud[~aud["reproduces"]]
        body = (
            f"<p>{len(aud)} printed values recomputed from the printed counts alone; "
            f"{len(bad)} not reproduced by the test or formula the paper names:</p>"
            + H.plain_table(
                bad[["section", "item", "level", "statistic", "printed", "verdict", "explanation"]],
                left={"section", "item", "level", "statistic", "verdict", "explanation"},
            )
        )
        S.append(Section("audit", "Audit of the publication", body))
    else:
        S.append(
            Section(
                "audit",
                "Audit of the publication",
                H.omitted("publication audit", "not present"),
                False,
            )
        )

    paras = methods_paragraphs(config)
    S.append(
        Section(
            "methods",
            "Methods (generated from the configuration used)",
            "".join(f"<p>{escape(p)}</p>" for p in paras),
        )
    )
    return S


def build_report(
    paths,
    config: Mapping,
    out: str | os.PathLike,
    *,
    rule: str = "study_report",
    provenance_dir: str | None = None,
) -> Path:
    """Write the self-contained study report HTML (atomically, with a provenance sidecar).

    Parameters
    ----------
    paths : iterable of path
        Every upstream artefact available to the report (Parquet tables and figures).
    config : mapping
        The validated workflow config actually used.
    out : path
        ``results/report/study_report.html``.
    """
    from pannet.io import write_atomic, write_sidecar
    from pannet.render import SYNTHETIC_BANNER

    inp = classify(paths)
    study = config.get("study") or {}
    synthetic = bool(study.get("synthetic", False))
    sections = build_sections(inp, config, synthetic=synthetic)
    page = H.render_page(
        title=(config.get("report") or {}).get("title") or "Study report",
        study=str(study.get("name", "")),
        synthetic=synthetic,
        banner=SYNTHETIC_BANNER,
        sections=sections,
        footer=footer_html(inp, provenance_dir),
    )
    write_atomic(out, lambda p: p.write_text(page, encoding="utf-8"))
    write_sidecar(
        out,
        rule=rule,
        inputs=[str(p) for p in inp.all_paths()],
        params={"sections": {s.id: s.present for s in sections}},
    )
    return Path(out)
