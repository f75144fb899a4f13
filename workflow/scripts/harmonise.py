"""harmonise[site]: one site's export -> pseudonymised CDM tables (+ mapping issues)."""

import logging
import sys

_stderr = sys.stderr
sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")

from pannet.harmonise import harmonise_site  # noqa: E402
from pannet.io import write_parquet  # noqa: E402
from pannet.pseudonym import PseudonymKeyError, resolve_key  # noqa: E402
from pannet.sites import StructuralError, load_dictionary  # noqa: E402

smk = snakemake  # noqa: F821
site = smk.wildcards.site
try:
    key = resolve_key(smk.params.pseudonymisation, synthetic=smk.params.synthetic)
    dictionary = load_dictionary(smk.input.dictionary)
    patients, treatments, issues = harmonise_site(site, smk.params.site_cfg, dictionary, key=key)
except (StructuralError, PseudonymKeyError) as exc:
    logging.error("%s", exc)
    print(f"harmonise[{site}]: {exc}", file=_stderr)
    sys.exit(1)

inputs = [*smk.input.raw, smk.input.dictionary]
params = {"site": site, "pseudonymisation": dict(smk.params.pseudonymisation)}
write_parquet(patients, smk.output.patients, rule="harmonise", inputs=inputs, params=params)
write_parquet(treatments, smk.output.treatments, rule="harmonise", inputs=inputs, params=params)
write_parquet(issues, smk.output.issues, rule="harmonise", inputs=inputs, params=params)
logging.info("%d patients, %d treatments, %d issues", len(patients), len(treatments), len(issues))
