"""validate_raw[site]: the raw great-expectations suite of one site's export."""

import logging
import sys

_stderr = sys.stderr
sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115
logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(message)s")

from pannet import validation  # noqa: E402
from pannet.io import write_atomic, write_parquet, write_sidecar  # noqa: E402
from pannet.sites import DictionaryError, StructuralError  # noqa: E402

smk = snakemake  # noqa: F821
site = smk.wildcards.site
try:
    results = validation.validate_raw_site(site, smk.params.site_cfg, smk.input.dictionary)
except (StructuralError, DictionaryError) as exc:
    logging.error("%s", exc)
    print(f"validate_raw[{site}]: {exc}", file=_stderr)
    sys.exit(1)

inputs = [*smk.input.raw, smk.input.dictionary]
write_parquet(
    results, smk.output.results, rule="validate_raw", inputs=inputs, params={"site": site}
)
page = validation.render_html(
    results, title=f"Raw validation: {site}", synthetic=smk.params.synthetic
)
write_atomic(smk.output.html, lambda tmp: tmp.write_text(page, encoding="utf-8"))
write_sidecar(smk.output.html, rule="validate_raw", inputs=[smk.output.results])
logging.info("%d expectations, %d not met", len(results), int((~results["success"]).sum()))
