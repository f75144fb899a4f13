# Stage: report - publication audit, replication check, journal tables, the study report.
from pathlib import Path

from pannet.report.inputs import upstream_artefacts


report: "../report/workflow.rst"


# Upstream artefacts the report may use. Stages append their final artefacts to
# ALL_TARGETS before this file is included; the fixed paths below are the artefact
# contract's. A path is used only when a rule makes it (or it exists), so a stage that
# is not configured or not built leaves its report section omitted, not broken.
REPORT_STAGES = (
    "cohort",
    "matching",
    "tables",
    "survival",
    "figures",
    "bootstrap",
    "diagnostics",
)
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


rule publication_audit:
    input:
        published=config["study"]["published"],
        modules=pannet_modules("pannet.pubaudit"),
    output:
        "results/report/publication_audit.parquet",
    log:
        "logs/publication_audit/publication_audit.log",
    script:
        "../scripts/publication_audit.py"


rule replication:
    input:
        published=config["study"]["published"],
        analysis=lambda wc: upstream_artefacts(
            REPORT_UPSTREAM, workflow.rules, stage="cohort", name="analysis.parquet"
        ),
        attrition=lambda wc: upstream_artefacts(
            REPORT_UPSTREAM, workflow.rules, stage="cohort", name="attrition.parquet"
        ),
        matched=lambda wc: upstream_artefacts(
            REPORT_UPSTREAM, workflow.rules, stage="matching", name="matched.parquet"
        ),
        survival=lambda wc: upstream_artefacts(
            REPORT_UPSTREAM, workflow.rules, stage="survival", suffix=".parquet"
        ),
        modules=pannet_modules("pannet.replication"),
    output:
        "results/report/replication.parquet",
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
        artefacts=lambda wc: upstream_artefacts(REPORT_UPSTREAM, workflow.rules)
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
        table=[
            t
            for t in config["report"]["tables"]
            if upstream_artefacts([f"results/tables/{t}.parquet"], workflow.rules)
        ],
        ext=config["report"]["formats"],
    )
)
