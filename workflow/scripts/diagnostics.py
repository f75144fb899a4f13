"""The study diagnostics: results/diagnostics/*.parquet (pannet.diagnostics.run_all)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

import pandas as pd  # noqa: E402

from pannet.diagnostics import run_all  # noqa: E402
from pannet.io import read_parquet, write_parquet  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
tests = [read_parquet(p) for p in inp.survival_tests]
frames = run_all(
    analysis=read_parquet(inp.analysis),
    scores=read_parquet(inp.scores),
    pairs=read_parquet(inp.pairs),
    matched=read_parquet(inp.matched),
    balance=read_parquet(inp.balance),
    sensitivity=read_parquet(inp.sensitivity[0]) if inp.sensitivity else None,
    survival_tests=pd.concat(tests, ignore_index=True) if tests else None,
    config=dict(params.diagnostics),
    covariates=list(params.covariates),
    endpoints=list(params.endpoints),
    populations=list(params.populations),
)
d = frames["diagnostics"]
print(d[["check", "population", "endpoint", "value", "status"]].to_string(), file=sys.stderr)
inputs = [p for k, v in inp.items() if k != "modules" for p in ([v] if isinstance(v, str) else v)]
for name, df in frames.items():
    write_parquet(
        df,
        snakemake.output[name],  # noqa: F821
        rule="diagnostics",
        inputs=inputs,
        params={"diagnostics": dict(params.diagnostics), "covariates": list(params.covariates)},
    )
