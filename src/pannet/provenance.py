"""What made an artefact: code version, environment summary and time (sessionInfo-like).

Kept import-light (standard library only) because every Snakemake job records it.
"""

from __future__ import annotations

import functools
import hashlib
import json
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


ENVIRONMENT_RECORD = "results/provenance/environment.json"


@functools.cache
def installed_distributions() -> tuple[str, ...]:
    """``name==version`` of every installed distribution, from the dist-info folder names.

    Reading folder names (not the metadata files) keeps this to a few milliseconds, so
    every job can afford to fingerprint the whole environment.
    """
    found: set[str] = set()
    for entry in sys.path:
        d = Path(entry or ".")
        if not d.is_dir():
            continue
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for name in names:
            for suffix in (".dist-info", ".egg-info"):
                if name.endswith(suffix) and "-" in name:
                    dist, version = name[: -len(suffix)].split("-", 1)
                    found.add(f"{dist.lower().replace('_', '-')}=={version}")
    return tuple(sorted(found))


def environment_fingerprint() -> str:
    """SHA-256 over Python's version and every installed distribution's name and version.

    The same value is stored in ``environment.json`` and in every artefact, so
    ``pannet audit`` can tell an artefact made in another environment.
    """
    text = "\n".join([f"python=={platform.python_version()}", *installed_distributions()])
    return hashlib.sha256(text.encode()).hexdigest()


def environment_summary() -> dict[str, object]:
    """The short environment record kept in every artefact (full one: environment.json)."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": _package_versions(),
        "lockfile_sha256": lockfile_sha256(),
        "fingerprint": environment_fingerprint(),
        "environment_record": ENVIRONMENT_RECORD,
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _r_version() -> dict[str, object] | None:
    import shutil

    exe = shutil.which("Rscript")
    if exe is None:
        return None
    code = (
        "cat(R.version.string, '\\n', sep='');"
        "for (p in c('survival', 'MatchIt', 'jsonlite'))"
        " cat(p, '=', tryCatch(as.character(packageVersion(p)), error=function(e) 'NA'), '\\n', sep='')"
    )
    try:
        proc = subprocess.run([exe, "-e", code], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return {"rscript": exe, "version": None}
    lines = proc.stdout.splitlines()
    packages = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    return {"rscript": exe, "version": lines[0] if lines else None, "packages": packages}


def _threadpools() -> list[dict[str, object]]:
    """BLAS/OpenMP libraries and their thread counts, as threadpoolctl sees them."""
    try:
        import numpy  # noqa: F401 - loads its BLAS so threadpoolctl can see it
        import scipy.linalg  # noqa: F401
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    keep = (
        "user_api",
        "internal_api",
        "prefix",
        "version",
        "num_threads",
        "threading_layer",
        "architecture",
    )
    pools = []
    for info in threadpool_info():
        pool = {k: info.get(k) for k in keep if k in info}
        # numpy and scipy each bundle an OpenBLAS with the same prefix; the folder that
        # holds it (numpy.libs/, scipy.libs/) tells them apart without an absolute path.
        lib = Path(info.get("filepath") or "")
        pool["library"] = f"{lib.parent.name}/{lib.name}" if lib.name else None
        pools.append(pool)
    # threadpoolctl lists libraries in load order, which varies between processes: sort
    # on every field so environment.json is byte-identical from run to run.
    return sorted(pools, key=lambda d: json.dumps(d, sort_keys=True, default=str))


def environment_record() -> dict[str, object]:
    """The full environment record (``results/provenance/environment.json``).

    The sessionInfo of the project: lock-file hash, every installed package version,
    Python, OS, CPU, BLAS libraries and thread counts, R (when ``Rscript`` is on PATH),
    and the thread-control environment variables.
    """
    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower().replace("_", "-")] = dist.version
    uname = platform.uname()
    return {
        "time": now_iso(),
        "fingerprint": environment_fingerprint(),
        "lockfile": {"path": "requirements.lock", "sha256": lockfile_sha256()},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "compiler": platform.python_compiler(),
            "executable": sys.executable,
        },
        "os": {
            "system": uname.system,
            "release": uname.release,
            "version": uname.version,
            "platform": platform.platform(),
            "libc": " ".join(platform.libc_ver()).strip() or None,
        },
        "cpu": {
            "machine": uname.machine,
            "model": _cpu_model(),
            "logical_cores": os.cpu_count(),
        },
        "threads": {
            "threadpools": _threadpools(),
            "env": {
                k: os.environ.get(k)
                for k in (
                    "OMP_NUM_THREADS",
                    "OPENBLAS_NUM_THREADS",
                    "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS",
                )
            },
        },
        "r": _r_version(),
        "code": {"pannet": code_version()["pannet"], **git_state()},
        "packages": dict(sorted(packages.items())),
    }


def snakemake_job() -> dict[str, object] | None:
    """The Snakemake job running this process (``script:`` directive), else None.

    Snakemake's script preamble defines ``snakemake`` in ``__main__``; from it the record
    takes the rule, wildcards, outputs, params and the declared input files. Thread and
    resource counts are left out on purpose: they differ between a 1-core and a 2-core
    run of the same work, and provenance must not.
    """
    smk = getattr(sys.modules.get("__main__"), "snakemake", None)
    if smk is None or not hasattr(smk, "rule") or not hasattr(smk, "input"):
        return None

    def _files(named) -> list[str]:
        out: list[str] = []
        for v in named:
            if isinstance(v, (str, os.PathLike)):
                out.append(os.fspath(v))
            else:
                out.extend(os.fspath(x) for x in v)
        return out

    params = {}
    try:
        params = {k: v for k, v in smk.params.items()}
    except AttributeError:
        pass
    config = getattr(smk, "config", None) or {}
    return {
        "rule": smk.rule,
        "wildcards": dict(smk.wildcards.items()) if hasattr(smk.wildcards, "items") else {},
        "outputs": _files(smk.output),
        "params": params,
        "config_sha256": _config_sha256(config),
        "input_files": [f for f in _files(smk.input) if os.path.exists(f)],
    }


def _config_sha256(config) -> str:
    from pannet.io import _jsonable

    text = json.dumps(_jsonable(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
