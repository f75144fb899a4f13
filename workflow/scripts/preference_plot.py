"""Preference-score distribution by group: results/diagnostics/preference_score.png."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.equipoise import plot_preference  # noqa: E402
from pannet.io import read_parquet, write_sidecar  # noqa: E402

inp = snakemake.input  # noqa: F821
out = snakemake.output[0]  # noqa: F821
bounds = tuple(snakemake.params.bounds)  # noqa: F821
plot_preference(read_parquet(inp.preference), out, bounds=bounds)
write_sidecar(out, rule="preference_plot", inputs=[inp.preference], params={"bounds": bounds})
