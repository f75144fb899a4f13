"""KM summaries, step tables and tests of one population x endpoint: results/survival/."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pannet.io import read_parquet, write_parquet  # noqa: E402
from pannet.survival import analyse_population  # noqa: E402

w, cfg = snakemake.wildcards, snakemake.params.survival  # noqa: F821
res = analyse_population(
    read_parquet(snakemake.input.cohort),  # noqa: F821
    population=w.population,
    endpoint=w.endpoint,
    horizon=cfg["horizons"][w.endpoint],
    conf_type=cfg["conf_type"],
    conf_level=cfg["conf_level"],
    rmst_tau=cfg["rmst_tau"][w.endpoint],
    ties=cfg["ties"],
    quantiles=cfg["quantiles"],
    evalue_rare=cfg["evalue_rare_outcome"],
    cluster_column="pair_id" if w.population != "all" else None,
)
print(res["summary"].to_string(), res["tests"].T.to_string(), sep="\n", file=sys.stderr)
for name, df in res.items():
    write_parquet(
        df,
        snakemake.output[name],  # noqa: F821
        rule="survival",
        inputs=[snakemake.input.cohort],  # noqa: F821
        params={"population": w.population, "endpoint": w.endpoint, "survival": cfg},
    )
