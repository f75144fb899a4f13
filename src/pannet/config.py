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
