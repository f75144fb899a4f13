"""Audit the publication from its printed counts -> results/report/publication_audit.parquet."""

import sys

from pannet.io import write_parquet
from pannet.pubaudit import audit_publication, read_published

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 - injected by Snakemake

published = read_published(snakemake.input.published)  # noqa: F821
df = audit_publication(published)
write_parquet(df, snakemake.output[0], rule=snakemake.rule, inputs=[snakemake.input.published])  # noqa: F821
print(df["verdict"].value_counts().to_string(), file=sys.stderr)
