"""Percentile and BCa intervals from the bootstrap batches: results/bootstrap/summary.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.bootstrap import run_summary  # noqa: E402
from pannet.io import write_parquet  # noqa: E402

cfg = snakemake.params.config  # noqa: F821
summary = run_summary(snakemake.input.data, list(snakemake.input.batches), cfg)  # noqa: F821
print(summary.to_string(), file=sys.stderr)
write_parquet(
    summary,
    snakemake.output[0],  # noqa: F821
    rule="bootstrap_summary",
    inputs=[snakemake.input.data, *snakemake.input.batches],  # noqa: F821
    params=cfg,
    seed=cfg["bootstrap"]["seed"],
)
