"""Load and validate the study configuration against its JSON schemas.

The schema is split into one fragment per top-level section
(``workflow/schemas/config/<section>.schema.yaml``) so that each stage owns the
description and defaults of its own keys. Validation fills in the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = PROJECT_ROOT / "workflow" / "schemas" / "config"


class ConfigError(ValueError):
    """The configuration breaks its schema; the message names the key and the rule."""


def _extend_with_default(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for prop, sub in properties.items():
                if "default" in sub and prop not in instance:
                    instance[prop] = sub["default"]
        yield from validate_properties(validator, properties, instance, schema)

    import jsonschema

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def schema_fragments(schema_dir: Path = SCHEMA_DIR) -> dict[str, dict]:
    """Section name -> JSON schema of that section."""
    import yaml

    return {
        p.name.removesuffix(".schema.yaml"): yaml.safe_load(p.read_text())
        for p in sorted(schema_dir.glob("*.schema.yaml"))
    }


def validate_config(config: dict[str, Any], schema_dir: Path = SCHEMA_DIR) -> dict[str, Any]:
    """Validate ``config`` in place section by section, filling defaults; return it."""
    import jsonschema

    fragments = schema_fragments(schema_dir)
    unknown = sorted(set(config) - set(fragments))
    if unknown:
        raise ConfigError(
            f"config: unknown top-level key(s) {unknown}; known sections: {sorted(fragments)}"
        )
    validator_cls = _extend_with_default(jsonschema.Draft202012Validator)
    for section, schema in fragments.items():
        if section not in config:
            config[section] = {} if schema.get("type") == "object" else None
        errors = sorted(validator_cls(schema).iter_errors(config[section]), key=str)
        if errors:
            e = errors[0]
            where = ".".join([section, *map(str, e.absolute_path)])
            raise ConfigError(f"config key '{where}': {e.message} (schema rule: {e.validator})")
    return config


def load_config(path: str | Path = PROJECT_ROOT / "config" / "config.yaml") -> dict[str, Any]:
    """Read a config YAML and validate it."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        return validate_config(yaml.safe_load(fh) or {})


def _describe(name: str, schema: dict, depth: int, lines: list[str]) -> None:
    kind = schema.get("type") or ("enum" if "enum" in schema else "")
    if "enum" in schema:
        kind = " / ".join(map(str, schema["enum"]))
    elif isinstance(kind, list):
        kind = " or ".join(kind)
    default = schema.get("default", "-")
    desc = " ".join(str(schema.get("description", "")).split())
    lines.append(f"| `{name}` | {kind} | `{default}` | {desc} |")
    for sub, subschema in (schema.get("properties") or {}).items():
        _describe(f"{name}.{sub}", subschema, depth + 1, lines)


def schema_markdown(schema_dir: Path = SCHEMA_DIR) -> str:
    """Markdown reference of every configuration key (``config/README.md`` is made from it)."""
    out = [
        "# Configuration reference",
        "",
        "`config/config.yaml` holds the study's settings. Every key below is validated against",
        "its JSON schema in `workflow/schemas/config/<section>.schema.yaml` when the workflow",
        "starts; a key left out takes its default. A site's own export is described by its data",
        "dictionary, `config/sites/<site>.yaml` (schema: `workflow/schemas/site.schema.yaml`).",
        "To run on real exports: point `sites.<id>.data_dir` at them, set `study.synthetic: false`",
        "and give the pseudonymisation key (see `pseudonymisation`).",
        "",
        "This file is generated: `python -m pannet.config > config/README.md`.",
        "",
    ]
    for section, schema in schema_fragments(schema_dir).items():
        desc = " ".join(str(schema.get("description", "")).split())
        out += [
            f"## `{section}`",
            "",
            desc,
            "",
            "| key | type | default | meaning |",
            "|---|---|---|---|",
        ]
        lines: list[str] = []
        props = schema.get("properties") or {}
        if props:
            for key, sub in props.items():
                _describe(f"{section}.{key}", sub, 1, lines)
        else:
            _describe(section, schema, 0, lines)
        out += lines + [""]
    return "\n".join(out)


if __name__ == "__main__":
    print(schema_markdown(), end="")
