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


def repeated_text(chars: int, aliases: int) -> str:
    """A small file whose aliases repeat one long text: `model` holds it, `seed` lists it `aliases` times."""
    return f"model: &b {'x' * chars}\nseed: [{', '.join(['*b'] * aliases)}]\n"


def test_aliases_that_repeat_a_long_text_are_refused_by_size():
    with pytest.raises(ConfigError) as error:
        parse_yaml(repeated_text(20_000, 100), "big.yaml")  # 2 MB once expanded, from a 20 KB file
    assert str(error.value).startswith("big.yaml:2: YAML aliases expand to more than 1000000 characters of text")
    assert len(str(error.value)) < 200


def test_a_config_error_never_echoes_a_whole_value(invoke, tmp_path):
    """A bad value is shown cut short: the error is one short line, however long the value."""
    path = tmp_path / "c.yaml"
    path.write_text("seed: [" + ", ".join(["abcdefghij" * 10] * 1000) + "]\n")  # 100 KB, no aliases
    result = invoke("-c", path, "models")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}:1: 'seed' must be int, got ['abcdefghij")
    assert len(result.stderr) < 300


@pytest.mark.slow
def test_thousands_of_aliases_under_a_memory_cap_end_in_one_line(tmp_path):
    """3,000 aliases of a 100 KB text (300 MB once expanded) with the address space capped at 1 GB."""
    import resource
    import subprocess
    import sys
    from pathlib import Path

    path = tmp_path / "c.yaml"
    path.write_text(repeated_text(100_000, 3000))
    probe = Path(sys.executable).parent / "probe"

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    result = subprocess.run(
        [str(probe), "-c", str(path), "models"], capture_output=True, text=True, preexec_fn=cap, timeout=120
    )
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 300, result.stderr[-500:]
    assert "aliases expand" in result.stderr and "MemoryError" not in result.stderr
