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
    frames = []
    for p in inp.survival:
        df = _read(p)
        if {"population", "endpoint"} <= set(df.columns):
            frames.append(df)
    summaries = [
        f for f in frames if "group" in f.columns and ("median" in f.columns or "surv" in f.columns)
    ]
    tests = [
        f
        for f in frames
        if "group" not in f.columns and ("logrank_p" in f.columns or "hr" in f.columns)
    ]
    import pandas as pd

    s = pd.concat(summaries, ignore_index=True) if summaries else None
    t = pd.concat(tests, ignore_index=True) if tests else None
    return frames, s, t


def _fmt(x, d=2):
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(x) else f"{x:.{d}f}"


def _fmt_p(p):
    try:
        p = float(p)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def survival_summary_table(summary, tests, failing=None, *, immortal: bool = False) -> str:
    """Medians (IQR), x-year survival (CI), RMST per group; log-rank, Cox HR, E-value per contrast."""
    import pandas as pd

    def is_naive(pop, ep):
        s = f"{pop} {ep}".lower()
        return "naive" in s or "immortal" in s

    rows = []
    if summary is not None:
        for _, r in summary.iterrows():
            if is_naive(r["population"], r["endpoint"]) != immortal:
                continue
            horizon = r.get("horizon", float("nan"))
            rows.append(
                {
                    "population": r["population"],
                    "endpoint": r["endpoint"],
                    "group": r["group"],
                    "n": r.get("n", ""),
                    "events": r.get("events", ""),
                    "median (IQR), years": f"{_fmt(r.get('median'))} ({_fmt(r.get('q25'))}-{_fmt(r.get('q75'))})",
                    "x-year survival % (CI)": (
                        f"{_fmt(horizon, 0)}y: {_fmt(100 * r.get('surv', float('nan')), 1)} "
                        f"({_fmt(100 * r.get('surv_lower', float('nan')), 1)}-"
                        f"{_fmt(100 * r.get('surv_upper', float('nan')), 1)})"
                    ),
                    "RMST, years": (
                        f"{_fmt(r.get('rmst'))} (tau {_fmt(r.get('rmst_tau'), 0)})"
                        if "rmst" in r.index
                        else ""
                    ),
                }
            )
    trows, flagged = [], []
    if tests is not None:
        for _, r in tests.iterrows():
            if is_naive(r["population"], r["endpoint"]) != immortal:
                continue
            flags = _flags_for(failing, r["population"], r["endpoint"])
            if flags:
                flagged.append(len(trows))
            trows.append(
                {
                    "population": r["population"],
                    "endpoint": r["endpoint"],
                    "log-rank p": _fmt_p(r.get("logrank_p")),
                    "Cox HR (95% CI)": (
                        f"{_fmt(r.get('hr'))} ({_fmt(r.get('hr_lower'))}-{_fmt(r.get('hr_upper'))})"
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
    if rows:
        out += H.plain_table(pd.DataFrame(rows), left={"population", "endpoint", "group"})
    if trows:
        out += H.plain_table(
            pd.DataFrame(trows), left={"population", "endpoint", "diagnostics"}, flag_rows=flagged
        )
    return out


def _bootstrap_table(df) -> str:
    return H.plain_table(df, left=[c for c in df.columns if df[c].dtype == object])


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
                + H.plain_table(
                    diag.reset_index(drop=True), flag_rows=idx, left=list(diag.columns[:2])
                ),
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
        body += H.plain_table(att, left=[c for c in att.columns if att[c].dtype == object])
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
        rows = set()
        for c in smd_cols:
            vals = bal[c].abs()
            scale = 100 if vals.max(skipna=True) <= 2 else 1  # SMD stored as a fraction or x 100
            rows |= {i for i, v in enumerate(vals * scale) if v > flag}
        body += H.plain_table(
            bal, left=[c for c in bal.columns if bal[c].dtype == object], flag_rows=rows
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
    frames, summary, tests = _survival_frames(inp)
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
    body = _figures(inp, ["immortal"]) + survival_summary_table(
        summary, tests, failing, immortal=True
    )
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
                "no survival results for the naive (metastasis-date) time origin",
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
        note = (
            '<p class="note">On the synthetic demo data this checks the pipeline and the data generator '
            "(calibrated to the publication), not the study.</p>"
            if synthetic
            else ""
        )
        n_in = int(rep["within"].fillna(False).sum())
        n_out = int((rep["within"] == False).sum())  # noqa: E712
        n_na = int(rep["within"].isna().sum())
        summary_txt = f"<p>{n_in} within tolerance, {n_out} outside, {n_na} not computed.</p>"
        show = rep[
            [
                "section",
                "item",
                "group",
                "published",
                "computed",
                "difference",
                "tolerance",
                "within",
            ]
        ]
        flag = {
            i for i, v in enumerate(rep["within"]) if v is False or (not pd.isna(v) and not bool(v))
        }
        S.append(
            Section(
                "replication",
                "Replication check against the publication",
                note
                + summary_txt
                + H.plain_table(show, flag_rows=flag, left={"section", "item", "group"}),
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
