"""The artefact contract: atomic Parquet writes with provenance in the schema metadata.

Every step of the workflow writes its tables through :func:`write_parquet`, so that each
artefact carries the record of what made it (rule, input hashes, params, seed, code
version, package versions, time) and a killed job never leaves a half-written file that
a later step could read. Rendered outputs (HTML, PNG, PDF, DOCX, ...) get the same record
as a JSON sidecar through :func:`write_sidecar`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROVENANCE_KEY = b"pannet.provenance"
SIDECAR_SUFFIX = ".prov.json"
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


def sha256_file(path: str | os.PathLike, *, cache: bool = True) -> str:
    """SHA-256 hex digest of a file's bytes (cached on path, size and mtime).

    ``cache=False`` rereads the bytes: a checker must not trust the cache, since a write
    within the file system's time-stamp resolution keeps size and mtime.

    A directory (e.g. a Data Docs site) hashes as the SHA-256 of its sorted
    ``relative path <TAB> file hash`` lines, so it is recorded like a file.
    """
    p = Path(path)
    if p.is_dir():
        lines = [
            f"{f.relative_to(p).as_posix()}\t{sha256_file(f, cache=cache)}"
            for f in sorted(p.rglob("*"))
            if f.is_file()
        ]
        return hashlib.sha256("\n".join(lines).encode()).hexdigest()
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE or not cache:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _HASH_CACHE[key] = h.hexdigest()
    return _HASH_CACHE[key]


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The rename is atomic on POSIX, so readers see either the old file or the complete new
    one, never a partial write (a SIGKILL leaves at most a stray ``.tmp`` file, which no
    rule declares as an input).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    # mkstemp creates 0600; artefacts get the usual umask-derived mode (e.g. 0644)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    """Convert params (Snakemake Namedlists, numpy scalars, paths) to plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "items") and callable(value.items):
        try:
            return {str(k): _jsonable(v) for k, v in value.items()}
        except Exception:  # noqa: BLE001 - fall through to the generic cases
            pass
    if isinstance(value, (list, tuple, set)) or (
        isinstance(value, Iterable) and not isinstance(value, (str, bytes))
    ):
        return [_jsonable(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def provenance_record(
    *,
    rule: str,
    inputs: Iterable[str | os.PathLike] | Mapping[str, Any] = (),
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build the provenance record of one artefact.

    Parameters
    ----------
    rule : str
        The Snakemake rule (or API function) that made the artefact.
    inputs : iterable of paths, or mapping of name -> path(s)
        Files read; each is recorded with its SHA-256.
    params : mapping, optional
        Parameters and config values used.
    seed : int, optional
        The random seed, when randomness was used.
    extra : mapping, optional
        Anything else worth keeping (e.g. row lineage notes).
    """
    from pannet import provenance as _prov  # late import: keeps io light for readers

    paths: list[str] = _flatten_paths(inputs)
    job = _prov.snakemake_job()
    if job is not None:
        # The job's declared inputs complete the record, so the chain that `pannet trace`
        # follows never misses a file a script forgot to pass.
        paths.extend(job.pop("input_files"))
    input_records = [
        {"path": p, "sha256": sha256_file(p)} for p in sorted({_relpath(p) for p in paths})
    ]
    record = {
        "rule": rule,
        "inputs": input_records,
        "params": _jsonable(params or {}),
        "seed": seed,
        "code": _prov.code_version(),
        "environment": _prov.environment_summary(),
        "time": _prov.now_iso(),
        **({"extra": _jsonable(extra)} if extra else {}),
    }
    if job is not None:
        record["job"] = _jsonable(job)
    return record


def _flatten_paths(inputs) -> list[str]:
    """Paths from a list, a mapping of name -> path(s), or a Snakemake Namedlist."""
    if isinstance(inputs, (str, os.PathLike)):
        return [os.fspath(inputs)]
    values = inputs.values() if isinstance(inputs, Mapping) else inputs
    paths: list[str] = []
    for v in values:
        if isinstance(v, (str, os.PathLike)):
            paths.append(os.fspath(v))
        else:
            paths.extend(_flatten_paths(v))
    return paths


def _relpath(path: str) -> str:
    """Record paths relative to the working directory (the project root in a run).

    Relative paths make the records of two runs in different folders identical and let
    ``pannet audit`` check a copied or moved results folder.
    """
    p = Path(path)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return p.as_posix()
    return Path(os.path.normpath(p)).as_posix()


def write_parquet(
    df,
    path: str | os.PathLike,
    *,
    rule: str,
    inputs: Iterable[str | os.PathLike] | Mapping[str, Any] = (),
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write a DataFrame to Parquet atomically, with provenance in the schema metadata.

    The bytes depend only on the data and the provenance record; the record's time stamp
    is the only field that differs between two identical runs.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df, preserve_index=False)
    record = provenance_record(rule=rule, inputs=inputs, params=params, seed=seed, extra=extra)
    meta = dict(table.schema.metadata or {})
    meta[PROVENANCE_KEY] = json.dumps(record, sort_keys=True).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=False)
    return Path(path)


def read_parquet(path: str | os.PathLike, columns: list[str] | None = None):
    """Read an artefact as a pandas DataFrame."""
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=columns).to_pandas()


def read_provenance(path: str | os.PathLike) -> dict[str, Any]:
    """The provenance record of an artefact (Parquet metadata or JSON sidecar)."""
    p = Path(path)
    if p.suffix == ".parquet":
        import pyarrow.parquet as pq

        meta = pq.read_schema(p).metadata or {}
        raw = meta.get(PROVENANCE_KEY)
        return json.loads(raw) if raw else {}
    side = p.with_name(p.name + SIDECAR_SUFFIX)
    return json.loads(side.read_text()) if side.exists() else {}


def write_sidecar(
    path: str | os.PathLike,
    *,
    rule: str,
    inputs: Iterable[str | os.PathLike] | Mapping[str, Any] = (),
    params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``<path>.prov.json`` for a rendered output (HTML, PNG, PDF, DOCX, ...)."""
    record = provenance_record(rule=rule, inputs=inputs, params=params, seed=seed, extra=extra)
    record["output"] = {"path": _relpath(os.fspath(path)), "sha256": sha256_file(path)}
    side = Path(path).with_name(Path(path).name + SIDECAR_SUFFIX)
    with atomic_path(side) as tmp:
        tmp.write_text(json.dumps(record, sort_keys=True, indent=1))
    return side


# Figure metadata that would embed the software version or a creation time: removed, so
# the same figure gives the same bytes on every run.
_STABLE_FIGURE_METADATA = {
    "png": {"Software": None},
    "pdf": {"CreationDate": None, "Producer": None},
}


def save_figure(
    fig, path: str | os.PathLike, *, fmt: str | None = None, dpi: float | str = 300
) -> Path:
    """Save a matplotlib figure atomically with reproducible bytes.

    ``fmt`` defaults to the path's suffix (give it when ``path`` is itself a temporary
    file); ``dpi="figure"`` keeps the figure's own resolution (matplotlib's default).
    """
    fmt = fmt or Path(path).suffix.lstrip(".").lower()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt, metadata=_STABLE_FIGURE_METADATA.get(fmt))
    return Path(path)


def write_atomic(path: str | os.PathLike, writer: Callable[[Path], None]) -> Path:
    """Run ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)
