"""YAML inputs: alias bombs and self-containing aliases are a one-line ConfigError naming file:line."""

from __future__ import annotations

import pytest

from probe.errors import ConfigError
from probe.files.yamldoc import parse_yaml


def bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_in_config_is_refused_with_file_and_line(invoke, tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb())
    result = invoke("-c", path, "models")
    assert result.exit_code == 2
    assert f"{path}:" in result.stderr and "aliases expand" in result.stderr
    assert "internal error" not in result.stderr


def test_recursive_alias_is_refused(invoke, tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("a: &a [*a]\n")
    result = invoke("-c", path, "neighbours", "star")
    assert result.exit_code == 2
    assert f"{path}:1: recursive YAML alias" in result.stderr


def test_a_few_aliases_still_work():
    doc = parse_yaml("base: &b {steps: 3}\none: *b\ntwo: *b\n", "f.yaml")
    assert doc.data["two"] == {"steps": 3}


def test_deep_nesting_is_a_config_error():
    with pytest.raises(ConfigError, match=r"nested too deeply|invalid YAML"):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000 + "\n", "deep.yaml")


def test_preset_files_get_the_same_guard(invoke, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(bomb())
    result = invoke("invert", "a star", "--preset", path)
    assert result.exit_code == 2 and "aliases expand" in result.stderr


def test_config_folder_is_named_as_a_folder(invoke, tmp_path):
    result = invoke("-c", tmp_path, "models")
    assert result.exit_code == 2 and "is a folder" in result.stderr
