"""derive_analysis: results/cohort/analysis.parquet, one row per included patient."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.derive import derive_analysis  # noqa: E402
from pannet.io import read_parquet, write_parquet  # noqa: E402

smk = snakemake  # noqa: F821
analysis = derive_analysis(
    read_parquet(smk.input.cohort), read_parquet(smk.input.treatments), dict(smk.params.analysis)
)
write_parquet(
    analysis,
    smk.output.analysis,
    rule="derive_analysis",
    inputs=[smk.input.cohort, smk.input.treatments],
    params={"analysis": dict(smk.params.analysis)},
)
print(analysis.groupby("group").size().to_string(), file=sys.stderr)
