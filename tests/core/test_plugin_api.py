"""Plugins coming and going: disabled built-ins, config sections for absent commands, option-name
config keys, diagnostics of `probe plugins`, registration clashes and API versions."""

from __future__ import annotations

import json
import types

import pytest

BUILT_INS = ["audit", "compare", "invert", "neighbours", "run", "score", "shuffle", "world"]
#: one cheap command per built-in plugin that must keep working when any other plugin is disabled
CHECKS = {
    "audit": ["bias", "--help"],
    "compare": ["compare", "--help"],
    "run": ["report", "--help"],
    "invert": ["invert", "--help"],
    "neighbours": ["vocabs", "--json"],
    "score": ["score", "--help"],
    "shuffle": ["shuffle-test", "--list", "--json"],
    "world": ["world", "--help"],
}


@pytest.mark.parametrize("disabled", BUILT_INS)
@pytest.mark.slow
def test_disabling_one_built_in_leaves_the_others_working(invoke, monkeypatch, disabled):
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", disabled)
    for plugin, args in CHECKS.items():
        result = invoke(*args)
        if plugin == disabled:
            assert result.exit_code == 2 and f"plugin {disabled!r}, which is disabled" in result.output
        else:
            assert result.exit_code == 0, f"{args} with {disabled} disabled: {result.output}"


def test_bias_without_invert_says_invert_is_disabled(invoke, monkeypatch):
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", "invert")
    result = invoke("bias", "--prompts", "shapes", "--labels", "colours", "--n", "1")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "step kind 'invert'" in lines[0]
    assert "invert (disabled: remove it from PROBE_DISABLE_PLUGINS)" in lines[0]


def test_nsfw_text_part_without_neighbours_names_it(invoke, monkeypatch, tmp_path):
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", "neighbours")
    exp = tmp_path / "exp.yaml"
    exp.write_text("steps:\n  - nsfw: {prompts: [a star], n: 1, settings: {steps: 1}}\n")
    result = invoke("-o", tmp_path, "run", exp)
    assert result.exit_code == 2 and "exp.yaml:2" in result.output
    assert "neighbours (disabled: remove it from PROBE_DISABLE_PLUGINS)" in result.output
    assert "text: false" in result.output


@pytest.mark.slow
def test_config_section_for_an_absent_plugin_is_a_warning(invoke, tmp_path, monkeypatch):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text("odd-one-out:\n  rounds: 3\nneighbours:\n  k: 2\n  json: true\n")
    result = invoke("-c", cfg, "neighbours", "star")
    assert result.exit_code == 0, result.output
    assert "probe.yaml:1: no loaded command 'odd-one-out'" in result.output
    assert len(json.loads(result.stdout)["results"][0]["neighbours"]) == 2  # `k` and `json` as typed
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", "neighbours")
    result = invoke("-c", cfg, "plugins", "--json")
    assert result.exit_code == 0 and "neighbours (disabled: remove it from PROBE_DISABLE_PLUGINS)" in result.output


@pytest.mark.parametrize("key", ["flag-rate", "flag_rate", "flag_rate_"])
def test_config_keys_are_option_names_or_parameter_names(invoke, tmp_path, key):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text(f"neighbours:\n  {key}: true\n  json: true\n")
    result = invoke("-c", cfg, "neighbours", "star", "--k", "2")
    assert result.exit_code == 0, result.output
    assert "flag_rate" in json.loads(result.stdout)


def test_unknown_config_option_names_file_and_line(invoke, tmp_path):
    cfg = tmp_path / "probe.yaml"
    cfg.write_text("neighbours:\n  k: 2\n  kk: 3\n")
    result = invoke("-c", cfg, "neighbours", "star")
    assert result.exit_code == 2 and "probe.yaml:3: `probe neighbours` has no option 'kk'" in result.output
    assert "flag-rate" in result.output and "as_json" not in result.output


def test_unknown_names_in_the_plugin_variables_warn(invoke, monkeypatch):
    monkeypatch.setenv("PROBE_LOAD_PLUGINS", "scor")
    result = invoke("models", "--json")
    assert result.exit_code == 0
    assert "PROBE_LOAD_PLUGINS names unknown plugin 'scor'" in result.output


def _plugin(**functions) -> types.ModuleType:
    """A plugin module holding `functions`; those named like hooks are marked @hookimpl, as the guide says."""
    from probe.plugin import hookimpl

    module = types.ModuleType("fake_parts")
    module.__dict__.update({k: hookimpl(v) if k.startswith("register_") else v for k, v in functions.items()})
    return module


def test_clashes_name_the_winner_and_the_loser(invoke):
    def register_vocabularies(register):
        register("world", lambda: ["a", "b"], "mine")
        register("mine", lambda: ["x", "y"], "mine too")

    result = invoke(
        "plugins", "--json", extra_plugins={"copycat": lambda: _plugin(register_vocabularies=register_vocabularies)}
    )
    data = json.loads(result.stdout)
    assert data["clashes"] == [
        "vocabulary 'world': plugin 'neighbours' wins, plugin 'copycat' loses "
        "(rename it, or register with replace=True)"
    ]
    rows = {r["name"]: r for r in data["plugins"]}
    assert rows["copycat"]["registered"] == ["vocabulary mine"]


def test_a_command_name_taken_twice_keeps_the_first(invoke):
    def register_commands(app):
        @app.command("vocabs")
        def hijack() -> None:
            print("HIJACKED")

    result = invoke("vocabs", extra_plugins={"zzz": lambda: _plugin(register_commands=register_commands)})
    assert result.exit_code == 0 and "HIJACKED" not in result.stdout and "world" in result.stdout
    assert "clash: command 'vocabs': plugin 'neighbours' wins, plugin 'zzz' loses" in result.output


def test_a_failing_hook_registers_nothing(invoke):
    def register_vocabularies(register):
        register("half", lambda: ["a", "b"])
        raise RuntimeError("boom")

    result = invoke(
        "vocabs", "--json", extra_plugins={"bad": lambda: _plugin(register_vocabularies=register_vocabularies)}
    )
    assert result.exit_code == 0 and "half" not in result.stdout
    assert (
        "plugin 'bad' failed in register_vocabularies, nothing it registered is used: RuntimeError: boom"
        in result.output
    )


def test_replace_true_replaces_a_built_in_part(invoke):
    def register_vocabularies(register):
        register("world", lambda: ["circle", "square"], "a smaller world", replace=True)

    result = invoke(
        "neighbours",
        "star",
        "--json",
        extra_plugins={"mine": lambda: _plugin(register_vocabularies=register_vocabularies)},
    )
    words = {n["word"] for n in json.loads(result.stdout)["results"][0]["neighbours"]}
    assert words == {"circle", "square"}


@pytest.mark.parametrize(
    "api, status, reason",
    [
        (1, "loaded", ""),
        (2, "loaded", ""),
        (3, "failed", "upgrade clip-probe"),
        ("one", "failed", "must be an integer"),
    ],
)
def test_plugin_api_version(invoke, api, status, reason):
    module = _plugin(register_vocabularies=lambda register: None, PROBE_API=api)
    rows = {
        r["name"]: r
        for r in json.loads(invoke("plugins", "--json", extra_plugins={"v": lambda: module}).stdout)["plugins"]
    }
    assert rows["v"]["status"] == status and reason in rows["v"]["reason"]


def test_a_hook_with_wrong_arguments_fails_that_plugin_only(invoke):
    from probe.plugin import hookimpl

    @hookimpl
    def register_vocabularies(register, extra):
        pass

    result = invoke(
        "plugins", "--json", extra_plugins={"bad": lambda: _plugin(register_vocabularies=register_vocabularies)}
    )
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert rows["bad"]["status"] == "failed" and "extra" in rows["bad"]["reason"]
    assert rows["neighbours"]["status"] == "loaded"


def test_hooks_listing(invoke):
    rows = {r["name"]: r for r in json.loads(invoke("plugins", "--json").stdout)["plugins"]}
    assert rows["invert"]["hooks"] == [
        "register_commands",
        "register_experiment_steps",
        "register_invert_params",
        "register_invert_priors",
        "register_invert_transforms",
        "register_python_api",
    ]
    assert "invert prior tv" in rows["invert"]["registered"]


def test_a_registration_that_cannot_work_is_reported_at_once(invoke):
    def register_vocabularies(register):
        register("broken", ["not", "a", "function"], "a list instead of a loader")

    result = invoke(
        "plugins", "--json", extra_plugins={"oops": lambda: _plugin(register_vocabularies=register_vocabularies)}
    )
    assert json.loads(result.stdout)["warnings"] == [
        "plugin 'oops' failed in register_vocabularies, nothing it registered is used: "
        "ValueError: vocabulary 'broken': expected a function, got list"
    ]
    listing = invoke("plugins", extra_plugins={"oops": lambda: _plugin(register_vocabularies=register_vocabularies)})
    assert "Warning: plugin 'oops' failed in register_vocabularies" in listing.output
