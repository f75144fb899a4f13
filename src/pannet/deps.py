"""Which ``pannet`` source files a step depends on, transitively.

Snakemake reruns a job when its script changes, but does not see the modules the script
imports. Each rule therefore lists ``module_files(...)`` as inputs, so an edit to
``pannet/matching.py`` reruns matching and its dependants and nothing upstream.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent

# Imported by every step for provenance; a change there changes metadata only, so it
# does not force every artefact to be remade.
_IGNORED = frozenset({"pannet", "pannet.io", "pannet.provenance", "pannet.deps"})


def _module_path(name: str) -> Path | None:
    rel = name.split(".")[1:]
    if not rel:
        return PACKAGE_DIR / "__init__.py"
    pkg = PACKAGE_DIR.joinpath(*rel)
    if (pkg / "__init__.py").exists():
        return pkg / "__init__.py"
    mod = pkg.with_suffix(".py")
    return mod if mod.exists() else None


@functools.cache
def _direct_imports(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    pkg_parts = ["pannet", *path.relative_to(PACKAGE_DIR).with_suffix("").parts[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pannet"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("pannet"):
                continue
            found.add(mod)
            for a in node.names:  # `from pannet import matching` names a module
                if _module_path(f"{mod}.{a.name}") is not None:
                    found.add(f"{mod}.{a.name}")
    return frozenset(found)


def module_closure(*modules: str) -> list[str]:
    """Module names reachable from ``modules`` through ``pannet`` imports (sorted)."""
    seen: set[str] = set()
    stack = [m if m.startswith("pannet") else f"pannet.{m}" for m in modules]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        path = _module_path(name)
        if path is None:
            raise ModuleNotFoundError(f"no pannet module {name!r} under {PACKAGE_DIR}")
        seen.add(name)
        stack.extend(_direct_imports(path) - seen)
    return sorted(seen - _IGNORED)


def module_files(*modules: str, root: Path | None = None) -> list[str]:
    """Source files of ``modules`` and everything they import from ``pannet``.

    Paths are relative to ``root`` (the project root by default) so they can be used as
    Snakemake inputs.
    """
    root = root or PACKAGE_DIR.parents[1]
    files = []
    for name in module_closure(*modules):
        p = _module_path(name)
        assert p is not None
        files.append(str(p.relative_to(root)))
    return files
