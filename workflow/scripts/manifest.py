"""Write results/provenance/manifest.parquet: every artefact of the run and its SHA-256."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.audit import build_manifest  # noqa: E402

build_manifest(
    [*snakemake.input.targets, snakemake.input.environment],  # noqa: F821
    output=snakemake.output[0],  # noqa: F821
    results=snakemake.params.results,  # noqa: F821
)
