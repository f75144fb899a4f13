# Stage: report - publication audit, replication check, journal tables, the study report.
from pathlib import Path


report: "../report/workflow.rst"


# Upstream artefacts the report may use. Stages append their final artefacts to
# ALL_TARGETS before this file is included; the fixed paths below are the artefact
# contract's. A path is used only when a rule makes it (or it exists), so a stage that
# is not configured or not built leaves its report section omitted, not broken.
REPORT_STAGES = ("cohort", "matching", "tables", "survival", "bootstrap", "diagnostics")
REPORT_FIXED = [
    "results/cohort/attrition.parquet",
    "results/cohort/analysis.parquet",
    "results/matching/propensity.parquet",
    "results/matching/matched.parquet",
    "results/matching/balance.parquet",
    "results/tables/table1.parquet",
    "results/tables/table2.parquet",
    "results/tables/surgery.parquet",
    "results/bootstrap/summary.parquet",
    "results/diagnostics/diagnostics.parquet",
]
REPORT_UPSTREAM = sorted(
    set(REPORT_FIXED)
    | {
        str(t)
        for t in ALL_TARGETS
        if isinstance(t, str)
        and Path(t).parts[:1] == ("results",)
        and len(Path(t).parts) > 2
        and Path(t).parts[1] in REPORT_STAGES
        and Path(t).suffix in (".parquet", ".png", ".svg")
    }
)


def produced(path):
    """True when a rule of the workflow makes ``path`` (or it already exists)."""
    return any(r.is_producer(path) for r in workflow.rules) or Path(path).exists()


def upstream(*, stage=None, suffix=None, name=None):
    return [
        p
        for p in REPORT_UPSTREAM
        if (stage is None or Path(p).parts[1] == stage)
        and (suffix is None or Path(p).suffix == suffix)
        and (name is None or Path(p).name == name)
        and produced(p)
    ]


def report_tables():
    return [
        t for t in config["report"]["tables"] if produced(f"results/tables/{t}.parquet")
    ]


rule publication_audit:
    input:
        published=config["study"]["published"],
        modules=pannet_modules("pannet.pubaudit"),
    output:
        report(
            "results/report/publication_audit.parquet",
            caption="../report/publication_audit.rst",
            category="Replication",
        ),
    log:
        "logs/publication_audit/publication_audit.log",
    script:
        "../scripts/publication_audit.py"


rule replication:
    input:
        published=config["study"]["published"],
        analysis=lambda wc: upstream(stage="cohort", name="analysis.parquet"),
        attrition=lambda wc: upstream(stage="cohort", name="attrition.parquet"),
        matched=lambda wc: upstream(stage="matching", name="matched.parquet"),
        survival=lambda wc: upstream(stage="survival", suffix=".parquet"),
        modules=pannet_modules("pannet.replication"),
    output:
        report(
            "results/report/replication.parquet",
            caption="../report/replication.rst",
            category="Replication",
        ),
    log:
        "logs/replication/replication.log",
    params:
        tolerance=config["report"]["replication_tolerance"],
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/replication.py"


rule render_table:
    input:
        table="results/tables/{table}.parquet",
        modules=pannet_modules("pannet.render"),
    output:
        html=report(
            "results/report/tables/{table}.html",
            caption="../report/tables.rst",
            category="Tables",
            subcategory="{table}",
        ),
        docx="results/report/tables/{table}.docx",
        tex="results/report/tables/{table}.tex",
        md="results/report/tables/{table}.md",
    log:
        "logs/render_table/{table}.log",
    wildcard_constraints:
        table="table1|table2|surgery",
    params:
        synthetic=config["study"]["synthetic"],
    script:
        "../scripts/render_tables.py"


rule study_report:
    input:
        artefacts=lambda wc: upstream()
        + [
            "results/report/replication.parquet",
            "results/report/publication_audit.parquet",
        ],
        modules=pannet_modules("pannet.report", "pannet.render"),
    output:
        html=report(
            "results/report/study_report.html",
            caption="../report/study_report.rst",
            category="Study report",
        ),
    log:
        "logs/study_report/study_report.log",
    script:
        "../scripts/study_report.py"


ALL_TARGETS.extend(
    [
        "results/report/study_report.html",
        "results/report/publication_audit.parquet",
        "results/report/replication.parquet",
    ]
)
ALL_TARGETS.extend(
    expand(
        "results/report/tables/{table}.{ext}",
        table=report_tables(),
        ext=config["report"]["formats"],
    )
)
