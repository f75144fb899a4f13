"""Scaled Schoenfeld residual plots of every Cox model: results/diagnostics/ph_residuals.png."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_sidecar  # noqa: E402
from pannet.phtest import plot_ph_panels  # noqa: E402

inp = snakemake.input  # noqa: F821
out = snakemake.output[0]  # noqa: F821
plot_ph_panels(
    read_parquet(inp.tests),
    read_parquet(inp.residuals),
    out,
    synthetic=snakemake.params.synthetic,  # noqa: F821
)
write_sidecar(out, rule="ph_plot", inputs=[inp.tests, inp.residuals])
