"""A Kaplan-Meier figure (PNG 300 dpi + PDF) from the survival step tables and tests."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.figures import km_figure  # noqa: E402
from pannet.io import read_parquet, write_sidecar  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
panels = [
    (read_parquet(s), read_parquet(t).iloc[0], title)
    for s, t, title in zip(inp.steps, inp.tests, params.titles, strict=True)
]
km_figure(
    panels,
    snakemake.output.png,  # noqa: F821
    snakemake.output.pdf,  # noqa: F821
    xmax=params.figure["xmax_years"],
    tick_step=params.figure["tick_years"],
    suptitle=params.suptitle,
    footnote=params.footnote,
)
for out in (snakemake.output.png, snakemake.output.pdf):  # noqa: F821
    write_sidecar(
        out,
        rule="km_figure",
        inputs=[*inp.steps, *inp.tests],
        params={"titles": list(params.titles), "figure": params.figure},
    )
