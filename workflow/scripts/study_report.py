"""The self-contained study report -> results/report/study_report.html."""

import sys

from pannet.report import build_report

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake

build_report(
    list(snakemake.input.artefacts),  # noqa: F821
    snakemake.config,  # noqa: F821
    snakemake.output.html,  # noqa: F821
    rule=snakemake.rule,  # noqa: F821
)
