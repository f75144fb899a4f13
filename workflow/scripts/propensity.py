"""Fit the propensity model: results/matching/{propensity,scores}.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.matching import run_propensity  # noqa: E402

cfg = snakemake.params.matching  # noqa: F821
coefs, scores = run_propensity(
    read_parquet(snakemake.input.analysis),  # noqa: F821
    covariates=cfg["covariates"],
    distance=cfg["distance"],
    reference=cfg["reference"],
)
for name, df in (("coefficients", coefs), ("scores", scores)):
    write_parquet(
        df,
        snakemake.output[name],  # noqa: F821
        rule="propensity",
        inputs=[snakemake.input.analysis],  # noqa: F821
        params=cfg,
    )
