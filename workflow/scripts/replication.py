"""Every published figure beside the computed one -> results/report/replication.parquet."""

import sys

from pannet.io import read_parquet, write_parquet
from pannet.pubaudit import read_published
from pannet.replication import replicate

smk = snakemake  # noqa: F821 - injected by Snakemake
sys.stderr = open(smk.log[0], "w")
inp = smk.input


def paths(name):
    return list(getattr(inp, name, []) or [])


def optional(name):
    return read_parquet(paths(name)[0]) if paths(name) else None


published = read_published(inp.published)
df = replicate(
    published,
    analysis=optional("analysis"),
    matched=optional("matched"),
    attrition=optional("attrition"),
    survival_frames=[read_parquet(p) for p in paths("survival")],
    tolerance=smk.params.tolerance,
    synthetic=smk.params.synthetic,
)
used = [inp.published] + [
    p for k in ("analysis", "matched", "attrition", "survival") for p in paths(k)
]
write_parquet(df, smk.output[0], rule=smk.rule, inputs=used, params=dict(smk.params))
