"""flow_diagram: the STROBE flow diagram (PNG) from the attrition table."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.cohort import flow_diagram  # noqa: E402
from pannet.io import read_parquet, write_atomic, write_sidecar  # noqa: E402

smk = snakemake  # noqa: F821
attrition = read_parquet(smk.input.attrition)
write_atomic(
    smk.output.png, lambda tmp: flow_diagram(attrition, tmp, synthetic=smk.params.synthetic)
)
write_sidecar(smk.output.png, rule="flow_diagram", inputs=[smk.input.attrition])
