"""merge_cohort: union of sites, cross-site duplicates, eligibility, attrition and ledger."""

import logging
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")

from pannet.cohort import build_cohort_from_files  # noqa: E402
from pannet.io import write_parquet  # noqa: E402

smk = snakemake  # noqa: F821
res = build_cohort_from_files(
    smk.params.sites,
    smk.input.patients,
    smk.input.treatments,
    smk.input.quarantine,
    smk.params.eligibility,
)
inputs = [*smk.input.patients, *smk.input.treatments, *smk.input.quarantine]
params = {"sites": list(smk.params.sites), "eligibility": dict(smk.params.eligibility)}
for name in ("cohort", "treatments", "attrition", "ledger"):
    write_parquet(
        getattr(res, name), smk.output[name], rule="merge_cohort", inputs=inputs, params=params
    )
logging.info("\n%s", res.attrition.to_string(index=False))
