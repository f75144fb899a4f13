"""Table 2, treatments of systemic disease in the matched groups: results/tables/table2.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.table2 import table2  # noqa: E402

inp, tables = snakemake.input, snakemake.params.tables  # noqa: F821
table = table2(
    read_parquet(inp.matched),
    rule=tables["test_rule"],
    expected_below=tables["fisher_expected_below"],
    test_override=tables["test_override"],
)
print(table.to_string(), file=sys.stderr)
write_parquet(
    table,
    snakemake.output[0],  # noqa: F821
    rule="table2",
    inputs=[inp.matched],
    params={"tables": tables},
)
