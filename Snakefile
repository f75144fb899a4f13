# pannet: the pan-NET primary tumour resection study as a Snakemake workflow.
# This file only wires: the configuration, the stages, and the final targets.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/harmonise.smk"
include: "workflow/rules/cohort.smk"
include: "workflow/rules/matching.smk"
include: "workflow/rules/survival.smk"
include: "workflow/rules/diagnostics.smk"
include: "workflow/rules/bootstrap.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/provenance.smk"


rule all:
    default_target: True
    input:
        ALL_TARGETS,
