"""Every knob is declared once: the settings model and each part's options model are the list that
the presets, the `--set` keys, experiment files, the command's flags and the docs' knob table must
agree with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from probe_invert.settings import InvertSettings, knob_table, knobs, list_presets, load_preset, preset_doc

ROOT = Path(__file__).resolve().parents[2]
KEYS = [key for key, *_ in knobs()]


def _named(item: Any) -> tuple[str, dict]:
    return (item, {}) if isinstance(item, str) else next(iter(item.items()))


def _keys_in(data: dict) -> set[str]:
    """The dotted knob keys a preset's data names (`transforms.affine.p`, `priors.tv.weight`...)."""
    out = set(data)
    for item in data.get("transforms", []):
        name, opts = _named(item)
        out |= {f"transforms.{name}.{k}" for k in opts or {}}
    if "param" in data:
        name, opts = _named(data["param"])
        out |= {f"param.{name}.{k}" for k in opts or {}}
    for name, value in (data.get("priors") or {}).items():
        out |= {f"priors.{name}.{k}" for k in value} if isinstance(value, dict) else {f"priors.{name}.weight"}
    return out


def test_every_preset_key_is_a_declared_knob():
    for name in list_presets():
        named = _keys_in(preset_doc(name).data)
        assert named <= set(KEYS), (name, named - set(KEYS))
    assert "transforms.affine.translate" in _keys_in(preset_doc("paper").data)  # the walk reaches into parts


def _other(key: str, kind: str, default: Any) -> Any:
    """A valid value other than the default, to see that a `--set` of the key lands on that knob."""
    special = {
        "transforms": ["resize"],
        "param": "fft",
        "priors": {"tv": 0.5},
        "resize_at": [0.5],
        "size_fraction": 0.25,
        "transforms.affine.p": 0.25,
        "transforms.affine.translate": 0.2,
        "transforms.affine.scale_max": 1.5,
        "priors.l1.center": 0.25,
        "param.pixel.init": 0.5,
    }
    if key in special:
        return special[key]
    if kind.startswith("one of "):
        return next(c for c in kind.removeprefix("one of ").split(", ") if c != default)
    if kind == "bool":
        return not default
    if kind == "int":
        return default + 1
    return 0.5 if default in (None, 0, 1.0) else default / 2


def _at(data: dict, key: str) -> Any:
    """The value at a dotted key of `to_dict()` data, parts found by name."""
    node: Any = data
    for part in key.split("."):
        node = next(item[part] for item in node if part in item) if isinstance(node, list) else node[part]
    return node


def _set_list(key: str, value: Any) -> list[str]:
    """The `--set` assignments that reach `key`: a part not in the default preset is chosen first."""
    first = {"transforms.colour_jitter": "transforms=[colour_jitter]", "param.fft": "param=fft"}
    before = [a for prefix, a in first.items() if key.startswith(prefix + ".")]
    return [*before, f"{key}={json.dumps(value)}"]


@pytest.mark.parametrize(("key", "kind", "default"), [(k, t, d) for k, t, d, _ in knobs() if k != "preset"])
def test_every_knob_is_reachable_by_set_and_by_an_experiment_file(key, kind, default, tmp_path):
    from probe_run.experiment import load_experiment

    value = _other(key, kind, default)
    assert value != default
    changed = load_preset("default").with_set(_set_list(key, value))
    data = changed.to_dict()
    spelled = {
        "transforms": [{"resize": {}}],
        "param": {"fft": {"decay": 1.0, "init_std": 0.01, "decorrelate": True}},
        "priors": {"tv": {"weight": 0.5}},
    }
    assert _at(data, key) == spelled.get(key, value), key
    # the same knobs written in an experiment file's invert step give the same settings
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"steps:\n  - invert: {{prompts: [a star], n: 1, settings: {json.dumps(data)}}}\n")
    assert load_experiment(exp).steps[0].options["settings"] == data


def test_an_experiment_files_bad_part_option_names_its_line(tmp_path):
    from probe_run.experiment import load_experiment

    from probe.errors import ConfigError

    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "steps:\n"
        "  - invert:\n"
        "      prompts: [a star]\n"
        "      n: 1\n"
        "      settings:\n"
        "        transforms:\n"
        "          - jitter\n"
        "          - affine: {p: 0.5,\n"
        "                     degrees: -1}\n"
    )
    with pytest.raises(
        ConfigError, match=r"exp.yaml:9: steps\[0\]\.invert\.settings\.transforms\[1\]\.affine\.degrees"
    ):
        load_experiment(exp)


def test_the_docs_knob_table_is_the_models():
    text = (ROOT / "docs" / "probes" / "invert.md").read_text(encoding="utf-8")
    table = re.search(r"<!-- knobs:start -->\n(.*?)\n<!-- knobs:end -->", text, re.S)
    assert table is not None
    assert table.group(1) == knob_table(), (
        "regenerate with: python -c 'from probe_invert.settings import knob_table; print(knob_table())'"
    )
    assert re.findall(r"^\| `([^`]+)` \|", table.group(1), re.M) == KEYS


def test_the_commands_flags_are_knobs_or_say_what_else_they_are(invoke):
    """Only the knobs people use have their own flag; every other flag is about prompts, outputs or models."""
    import typer.main

    from probe.cli.app import build_app

    group: Any = typer.main.get_command(build_app())
    ctx = group.make_context("probe", ["--help"], resilient_parsing=True)
    names = {p.name for p in group.get_command(ctx, "invert").params}
    not_knobs = {
        "prompts",
        "prompts_file",
        "seeds",
        "preset",
        "assignments",
        "ensemble",
        "gif",
        "force",
        "yes",
        "as_json",
    }
    assert names - not_knobs == {"steps", "size", "copies", "batch_size"} <= set(InvertSettings.model_fields)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("batch: 0", r"exp.yaml:5: steps\[0\]\.invert\.batch: Input should be greater than or equal to 1, got 0"),
        ("n: '3'", r"exp.yaml:4: steps\[0\]\.invert\.n: Input should be a valid integer, got '3'"),
        ("preset: 3", r"exp.yaml:5: steps\[0\]\.invert\.preset: Input should be a valid string, got 3"),
        ("seeds: 3-1", r"exp.yaml:5: steps\[0\]\.invert\.seeds: empty seed range '3-1'"),
    ],
)
def test_the_invert_steps_options_are_checked_by_its_model_at_their_line(tmp_path, option, message):
    from probe_run.experiment import load_experiment

    from probe.errors import ConfigError

    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"steps:\n  - invert:\n      prompts: [a star]\n      n: 1\n      {option}\n".replace("n: 1\n      n:", "n:")
    )
    with pytest.raises(ConfigError, match=message):
        load_experiment(exp)


def test_seeds_read_the_same_in_an_experiment_file_and_on_the_command_line(tmp_path):
    from probe_invert.prompts import parse_seeds
    from probe_run.experiment import load_experiment

    exp = tmp_path / "exp.yaml"
    exp.write_text("steps:\n  - invert: {prompts: [a star], seeds: '0,0,2-3,2'}\n")
    assert load_experiment(exp).steps[0].options["seeds"] == parse_seeds("0,0,2-3,2") == [0, 2, 3]
