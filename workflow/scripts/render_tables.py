"""One journal table from its Parquet -> HTML, DOCX, LaTeX and Markdown."""

import sys
from pathlib import Path

from pannet.io import read_parquet
from pannet.render import render_table

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake

out = [Path(p) for p in snakemake.output]  # noqa: F821
render_table(
    read_parquet(snakemake.input.table),  # noqa: F821
    out[0].with_suffix(""),
    name=snakemake.wildcards.table,  # noqa: F821
    synthetic=snakemake.params.synthetic,  # noqa: F821
    formats=[p.suffix.lstrip(".") for p in out],
    rule=snakemake.rule,  # noqa: F821
    inputs=[snakemake.input.table],  # noqa: F821
)
