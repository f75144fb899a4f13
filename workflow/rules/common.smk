# Shared wiring: config validation, the list of final targets, input helpers.
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
# Jobs run in new processes: they must import this checkout's pannet (not another
# installed copy), or a run in a copied project would record and run foreign code.
# (A write, not a required variable, so it is not an `envvars:` entry.)
os.environ.update(
    PYTHONPATH=os.pathsep.join(
        [
            str(Path(workflow.basedir) / "src"),
            *filter(None, [os.environ.get("PYTHONPATH")]),
        ]
    )
)

from pannet.config import validate_config  # noqa: E402
from pannet.deps import module_files  # noqa: E402

validate_config(config)

SITES = sorted(config["sites"])
# Each stage file appends its final artefacts; `rule all` in the Snakefile requests them.
ALL_TARGETS = []


def pannet_modules(*modules):
    """Source files of the pannet modules a rule's script uses (transitively)."""
    return module_files(*modules)


def site_raw_files(wildcards):
    """Every file of one site's raw export, from its data dictionary."""
    from pannet.sites import raw_files

    return raw_files(config["sites"][wildcards.site])
