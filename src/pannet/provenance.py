"""What made an artefact: code version, environment summary and time (sessionInfo-like).

Kept import-light (standard library only) because every Snakemake job records it.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

# Packages whose versions are recorded in every artefact; the full list is in
# results/provenance/environment.json.
KEY_PACKAGES = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "lifelines",
    "scikit-learn",
    "matplotlib",
    "great-expectations",
    "snakemake",
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def now_iso() -> str:
    """UTC time stamp; ``SOURCE_DATE_EPOCH`` pins it for byte-identical reruns."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    t = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return t.replace(microsecond=0).isoformat()


@functools.cache
def git_state() -> dict[str, object]:
    """Commit and dirty flag of the project checkout (None outside a git work tree)."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        status = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    if commit.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}


def module_hashes() -> dict[str, str]:
    """SHA-256 of each ``pannet`` module imported by this process so far."""
    out = {}
    for name, mod in sorted(sys.modules.items()):
        if name == "pannet" or name.startswith("pannet."):
            f = getattr(mod, "__file__", None)
            if f and os.path.exists(f):
                out[name] = hashlib.sha256(Path(f).read_bytes()).hexdigest()
    return out


def code_version() -> dict[str, object]:
    """Code version: git commit, dirty flag, pannet version and imported module hashes."""
    from pannet import __version__

    return {"pannet": __version__, **git_state(), "modules": module_hashes()}


@functools.cache
def _package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in KEY_PACKAGES:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def lockfile_sha256() -> str | None:
    lock = PROJECT_ROOT / "requirements.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else None


def environment_summary() -> dict[str, object]:
    """The short environment record kept in every artefact (full one: environment.json)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": _package_versions(),
        "lockfile_sha256": lockfile_sha256(),
        "environment_record": "results/provenance/environment.json",
    }
