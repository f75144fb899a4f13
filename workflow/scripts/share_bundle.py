"""The shareable bundle: results/share/ (aggregates only, small counts suppressed)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821, SIM115

from pathlib import Path  # noqa: E402

from pannet.share import make_share_bundle  # noqa: E402

inp, params = snakemake.input, snakemake.params  # noqa: F821
written = make_share_bundle(
    {name: inp[name] for name in params.tables},
    Path(snakemake.output.manifest).parent,  # noqa: F821
    min_cell=params.min_cell,
    bounds=tuple(params.bounds),
    synthetic=params.synthetic,
)
print("\n".join(map(str, written)), file=sys.stderr)
