"""The configuration: the shipped config validates, defaults fill in, errors name the key."""

from __future__ import annotations

import copy

import pytest
import yaml

from pannet.config import ConfigError, schema_fragments, schema_markdown, validate_config


@pytest.fixture
def shipped(root):
    return yaml.safe_load((root / "config" / "config.yaml").read_text())


def test_shipped_config_validates(shipped):
    validate_config(shipped)


def test_every_key_has_description_and_default():
    def walk(name, schema):
        assert schema.get("description"), f"{name}: no description"
        if name.count(".") >= 1:
            assert "default" in schema, f"{name}: no default"
        for sub, subschema in (schema.get("properties") or {}).items():
            walk(f"{name}.{sub}", subschema)

    for section, schema in schema_fragments().items():
        walk(section, schema)


def test_defaults_fill_in(shipped):
    cfg = copy.deepcopy(shipped)
    del cfg["matching"]["caliper"]
    validate_config(cfg)
    assert cfg["matching"]["caliper"] == 0.2


def test_error_names_key(shipped):
    cfg = copy.deepcopy(shipped)
    cfg["matching"]["order"] = "biggest"
    with pytest.raises(ConfigError, match=r"matching\.order"):
        validate_config(cfg)


def test_unknown_section_is_an_error(shipped):
    cfg = copy.deepcopy(shipped)
    cfg["matchng"] = {}
    with pytest.raises(ConfigError, match="matchng"):
        validate_config(cfg)


def test_config_readme_is_current(root):
    assert (root / "config" / "README.md").read_text() == schema_markdown(), (
        "config/README.md is stale: python -m pannet.config > config/README.md"
    )
