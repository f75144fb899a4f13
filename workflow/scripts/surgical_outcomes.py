"""Surgical outcomes of SG and 90-day mortality by matched group: results/tables/surgery.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.surgery import surgical_outcomes  # noqa: E402

inp, tables = snakemake.input, snakemake.params.tables  # noqa: F821
table = surgical_outcomes(
    read_parquet(inp.analysis),
    read_parquet(inp.matched),
    rule=tables["test_rule"],
    expected_below=tables["fisher_expected_below"],
)
print(table.to_string(), file=sys.stderr)
write_parquet(
    table,
    snakemake.output[0],  # noqa: F821
    rule="surgical_outcomes",
    inputs=[inp.analysis, inp.matched],
    params={"tables": tables},
)
