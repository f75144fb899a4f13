"""Audit the publication from its printed counts -> results/report/publication_audit.parquet."""

import sys

import yaml

from pannet.io import write_parquet
from pannet.pubaudit import audit_publication

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake

with open(snakemake.input.published, encoding="utf-8") as fh:  # noqa: F821
    published = yaml.safe_load(fh)
df = audit_publication(published)
write_parquet(df, snakemake.output[0], rule=snakemake.rule, inputs=[snakemake.input.published])  # noqa: F821
print(df["verdict"].value_counts().to_string(), file=sys.stderr)
