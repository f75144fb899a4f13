"""SMDs before and after matching: results/matching/balance.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.balance import run_balance  # noqa: E402
from pannet.io import read_parquet, write_parquet  # noqa: E402

inp = snakemake.input  # noqa: F821
params = snakemake.params  # noqa: F821
write_parquet(
    run_balance(
        read_parquet(inp.analysis),
        read_parquet(inp.scores),
        read_parquet(inp.matched),
        covariates=params.covariates,
        flag=params.smd_flag,
    ),
    snakemake.output[0],  # noqa: F821
    rule="balance",
    inputs=[inp.analysis, inp.scores, inp.matched],
    params={"covariates": params.covariates, "smd_flag": params.smd_flag},
)
