"""validate_cdm[site]: the CDM suite on one site's harmonised tables, and its quarantine."""

import logging
import sys

_stderr = sys.stderr
sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")

from pannet import validation  # noqa: E402
from pannet.io import write_atomic, write_parquet, write_sidecar  # noqa: E402

smk = snakemake  # noqa: F821
site = smk.wildcards.site
cfg = smk.params.validation
results, quarantine, n_rows = validation.validate_cdm_site(
    site,
    smk.params.site_cfg,
    smk.input.dictionary,
    patients=smk.input.patients,
    treatments=smk.input.treatments,
    issues=smk.input.issues,
    raw_results=smk.input.raw_results,
    earliest_date=cfg["earliest_date"],
    latest_date=cfg["latest_date"],
)
inputs = [smk.input.patients, smk.input.treatments, smk.input.issues, smk.input.raw_results]
params = {"site": site, "validation": dict(cfg)}
write_parquet(results, smk.output.results, rule="validate_cdm", inputs=inputs, params=params)
page = validation.render_html(
    results, title=f"CDM validation: {site}", synthetic=smk.params.synthetic
)
write_atomic(smk.output.html, lambda tmp: tmp.write_text(page, encoding="utf-8"))
write_sidecar(smk.output.html, rule="validate_cdm", inputs=[smk.output.results])
write_parquet(quarantine, smk.output.quarantine, rule="validate_cdm", inputs=inputs, params=params)
logging.info("quarantine: %d rows; rows per table: %s", len(quarantine), n_rows)
try:
    validation.enforce_policy(
        site,
        quarantine,
        n_rows,
        on_invalid=cfg["on_invalid"],
        max_share=cfg["max_quarantine_share"],
    )
except validation.QuarantineLimitError as exc:
    logging.error("%s", exc)
    print(f"validate_cdm[{site}]: {exc}", file=_stderr)
    sys.exit(1)
