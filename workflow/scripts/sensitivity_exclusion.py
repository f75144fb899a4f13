"""The sensitivity population: results/sensitivity/cohort.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.sensitivity import sensitivity_cohort  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
cohort = sensitivity_cohort(
    read_parquet(inp.matched),
    read_parquet(inp.analysis),
    rematch=params.rematch,
    matching=params.matching,
    seed=params.seed,
)
print(
    f"sensitivity population ({cohort['sensitivity_variant'].iat[0] if len(cohort) else '-'}): "
    f"{len(cohort)} patients, {cohort.groupby('group').size().to_dict()}",
    file=sys.stderr,
)
write_parquet(
    cohort,
    snakemake.output[0],  # noqa: F821
    rule="sensitivity_exclusion",
    inputs=[inp.matched, inp.analysis],
    params={"rematch": params.rematch, "matching": params.matching},
    seed=params.seed if params.rematch else None,
)
