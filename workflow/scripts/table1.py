"""Table 1 before and after matching: results/tables/table1.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.table1 import build_table1  # noqa: E402

inp, tables = snakemake.input, snakemake.params.tables  # noqa: F821
write_parquet(
    build_table1(
        read_parquet(inp.analysis),
        read_parquet(inp.matched),
        variables=snakemake.params.variables,  # noqa: F821
        test_rule=tables["test_rule"],
        expected_below=tables["fisher_expected_below"],
        test_override=tables["test_override"],
        smd_flag=tables["smd_flag"],
    ),
    snakemake.output[0],  # noqa: F821
    rule="table1",
    inputs=[inp.analysis, inp.matched],
    params={"tables": tables, "variables": snakemake.params.variables},  # noqa: F821
)
