"""Incremental reruns need each rule to list the pannet modules its script uses, transitively."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from pannet.deps import _IGNORED, module_closure, module_files

ROOT = Path(__file__).resolve().parents[1]
RULE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:\s*$", re.MULTILINE)


def test_closure_is_transitive():
    # cli imports trace (inside a function), and trace imports cdm: cdm is reached
    # only through trace.
    closure = module_closure("pannet.cli")
    assert {"pannet.cli", "pannet.audit", "pannet.trace", "pannet.crate", "pannet.cdm"} <= set(
        closure
    )
    assert "pannet.cdm" in module_closure("trace")
    assert not set(closure) & _IGNORED


def test_module_files_are_project_relative_paths():
    files = module_files("pannet.trace")
    assert "src/pannet/trace.py" in files and "src/pannet/cdm.py" in files
    assert all((ROOT / f).is_file() for f in files)


def test_unknown_module_is_an_error():
    with pytest.raises(ModuleNotFoundError):
        module_files("pannet.no_such_module")


def _script_modules(script: Path) -> set[str]:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pannet"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pannet"):
            found.add(node.module)
            for a in node.names:
                if (ROOT / "src" / Path(*node.module.split("."), f"{a.name}.py")).exists():
                    found.add(f"{node.module}.{a.name}")
    return found


def rule_blocks() -> list[tuple[str, str, str]]:
    """(smk file, rule name, rule text) of every rule in workflow/rules."""
    blocks = []
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text(encoding="utf-8")
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)]
        for i, (pos, name) in enumerate(starts):
            end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
            blocks.append((smk.name, name, text[pos:end]))
    return blocks


SCRIPT_RULES = [b for b in rule_blocks() if "script:" in b[2]]


@pytest.mark.parametrize("smk,rule,text", SCRIPT_RULES, ids=[b[1] for b in SCRIPT_RULES])
def test_rule_lists_every_module_its_script_imports(smk, rule, text):
    script = re.search(r'script:\s*\n?\s*"([^"]+)"', text).group(1)
    path = (ROOT / "workflow" / "rules" / script).resolve()
    used = set(module_closure(*_script_modules(path))) if _script_modules(path) else set()
    if not used:
        return
    m = re.search(r"modules=pannet_modules\(([^)]*)\)", text)
    assert m, f"{smk}: rule {rule} runs {script}, which imports pannet, but has no modules= input"
    listed_names = re.findall(r'"([\w.]+)"', m.group(1))
    listed = set(module_closure(*listed_names))
    missing = used - listed
    assert not missing, (
        f"{smk}: rule {rule}: {script} uses {sorted(missing)} (transitively) but "
        f"modules=pannet_modules({m.group(1)}) does not list them: edits there would not rerun it"
    )
