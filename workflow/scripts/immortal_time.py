"""OS by the study's time zero beside a naive one: results/survival/immortal_time.parquet."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.survival import immortal_time_contrast  # noqa: E402

inp, cfg = snakemake.input, snakemake.params.survival  # noqa: F821
matched = read_parquet(inp.matched)
table = immortal_time_contrast(
    {"all": read_parquet(inp.analysis), "matched": matched},
    horizon=cfg["horizons"]["os"],
    conf_type=cfg["conf_type"],
    conf_level=cfg["conf_level"],
    ties=cfg["ties"],
    evalue_rare=cfg["evalue_rare_outcome"],
    cluster_column="pair_id",  # present in matched only
)
print(table.to_string(), file=sys.stderr)
write_parquet(
    table,
    snakemake.output[0],  # noqa: F821
    rule="immortal_time",
    inputs=[inp.analysis, inp.matched],
    params={"survival": cfg},
)
