"""Write results/provenance/environment.json: the sessionInfo of this run."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import write_atomic  # noqa: E402
from pannet.provenance import environment_record  # noqa: E402

record = environment_record()
write_atomic(
    snakemake.output[0],  # noqa: F821
    lambda tmp: tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n"),
)
