"""Greedy caliper matching on the PS: results/matching/{pairs,matched}.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.matching import run_matching  # noqa: E402

cfg = snakemake.params.matching  # noqa: F821
seed = snakemake.params.seed  # noqa: F821
inputs = [snakemake.input.analysis, snakemake.input.scores]  # noqa: F821
pairs, matched = run_matching(
    read_parquet(snakemake.input.analysis),  # noqa: F821
    read_parquet(snakemake.input.scores),  # noqa: F821
    caliper=cfg["caliper"],
    std_caliper=cfg["std_caliper"],
    order=cfg["order"],
    ratio=cfg["ratio"],
    replace=cfg["replace"],
    random_state=seed,
)
print(f"{pairs['pair_id'].nunique()} matched sets, {len(pairs)} pairs", file=sys.stderr)
for name, df in (("pairs", pairs), ("matched", matched)):
    write_parquet(
        df,
        snakemake.output[name],  # noqa: F821
        rule="match",
        inputs=inputs,
        params=cfg,
        seed=seed if cfg["order"] == "random" else None,
    )
