"""One batch of bootstrap replicates: results/bootstrap/batch_<i>.parquet (long format)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.bootstrap import run_batch  # noqa: E402
from pannet.io import write_parquet  # noqa: E402

cfg = snakemake.params.config  # noqa: F821
batch = int(snakemake.wildcards.batch)  # noqa: F821
reps = run_batch(snakemake.input.data, cfg, batch)  # noqa: F821
print(
    f"batch {batch}: replicates {reps['replicate'].min()}..{reps['replicate'].max()}",
    file=sys.stderr,
)
write_parquet(
    reps,
    snakemake.output[0],  # noqa: F821
    rule="bootstrap_batch",
    inputs=[snakemake.input.data],  # noqa: F821
    params={**cfg, "batch": batch},
    seed=cfg["bootstrap"]["seed"],
)
