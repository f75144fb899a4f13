"""Love plot and PS overlap plot (PNG, 300 dpi, with provenance sidecars)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.balance import love_plot, overlap_plot  # noqa: E402
from pannet.io import atomic_path, read_parquet, write_sidecar  # noqa: E402

inp, out, params = snakemake.input, snakemake.output, snakemake.params  # noqa: F821
tag = " (SYNTHETIC DATA)" if params.synthetic else ""
with atomic_path(out.love) as tmp:
    love_plot(read_parquet(inp.balance), tmp, flag=params.smd_flag, title=f"Covariate balance{tag}")
with atomic_path(out.overlap) as tmp:
    overlap_plot(
        read_parquet(inp.scores),
        read_parquet(inp.matched, columns=["patient_key"])["patient_key"],
        tmp,
        title=f"Propensity score overlap{tag}",
    )
for path, src in ((out.love, [inp.balance]), (out.overlap, [inp.scores, inp.matched])):
    write_sidecar(path, rule="balance_plots", inputs=src, params={"smd_flag": params.smd_flag})
