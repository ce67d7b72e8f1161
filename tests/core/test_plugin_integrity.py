"""Plugins can extend an audit but never silently change it: an installed plugin whose entry point
sorts before every built-in loses each clash (printed), replaces only with replace=True (printed and
recorded), its wrong outputs are one line naming it, and a kind it would provide names it when it is off."""

from __future__ import annotations

import json
import sys
import textwrap
import types

import pytest

CLASHING = """
from probe.plugin import hookimpl

PROBE_API = 1
REPLACE = {replace}
print("printed at import")  # must never reach stdout (--json)


@hookimpl
def register_commands(app):
    @app.command("score")
    def score():
        print("HIJACKED")


@hookimpl
def register_model_loaders(register):
    register("shapes-", lambda target, allow_pickle=False: None, "takes over shapes-tiny")


@hookimpl
def register_vocabularies(register):
    register("world", lambda: ["circle", "square"], "a smaller world", replace=REPLACE)


@hookimpl
def register_perturbations(register):
    register("shuffle-words", lambda tokens, rng: list(reversed(tokens)), "reversed", replace=REPLACE)


@hookimpl
def register_python_api(register):
    register("open", lambda *a: "mine", "shadows probe.open")
    register("score", lambda *a: "mine", "my score", replace=REPLACE)
"""


@pytest.fixture
def install(tmp_path, monkeypatch):
    """Install a plugin as pip would, by entry-point metadata on sys.path (no import until discovery)."""

    def make(module_name: str, entry_name: str, source: str) -> None:
        site = tmp_path / f"site-{module_name}"
        dist = site / f"{module_name}-1.0.dist-info"
        dist.mkdir(parents=True)
        (site / f"{module_name}.py").write_text(textwrap.dedent(source))
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module_name}\nVersion: 1.0\n")
        (dist / "entry_points.txt").write_text(f"[probe.plugins]\n{entry_name} = {module_name}\n")
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.delitem(sys.modules, module_name, raising=False)

    return make


def test_an_installed_plugin_sorting_first_loses_every_clash(invoke, install):
    install("aclash_plugin", "aclash", CLASHING.format(replace=False))
    result = invoke("plugins", "--json")
    data = json.loads(result.stdout)  # the plugin's print went to stderr
    clashes = "\n".join(data["clashes"])
    for needle in (
        "command 'score': plugin 'score' wins, plugin 'aclash' loses",
        "model loader 'shapes-' of plugin 'aclash' refused: it overlaps the core's model spec 'shapes-tiny'",
        "vocabulary 'world': plugin 'neighbours' wins, plugin 'aclash' loses",
        "perturbation 'shuffle-words': plugin 'shuffle' wins, plugin 'aclash' loses",
        "Python API function 'open' of plugin 'aclash' refused: it would shadow probe.open",
        "Python API function 'score': plugin 'score' wins, plugin 'aclash' loses",
    ):
        assert needle in clashes
    assert data["replacements"] == []
    # every built-in still runs, and every command prints the clashes on stderr
    score = invoke("score", "--help")
    assert score.exit_code == 0 and "HIJACKED" not in score.stdout and "zero-shot label" in score.stdout
    assert "clash: vocabulary 'world'" in score.stderr
    vocabs = invoke("neighbours", "star", "-k", "3", "--json")
    assert vocabs.exit_code == 0
    words = {n["word"] for n in json.loads(vocabs.stdout)["results"][0]["neighbours"]}
    assert not words <= {"circle", "square"} and "plugin_replacements" not in vocabs.stdout


@pytest.mark.slow
def test_replace_true_is_printed_and_recorded_in_json_and_the_run_manifest(invoke, install, tmp_path):
    install("aclash_plugin", "aclash", CLASHING.format(replace=True))
    result = invoke("neighbours", "star", "-v", "world", "-k", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {n["word"] for n in data["results"][0]["neighbours"]} <= {"circle", "square"}
    record = {"kind": "vocabulary", "name": "world", "plugin": "aclash", "replaced": "neighbours"}
    assert record in data["plugin_replacements"]
    assert "plugin 'aclash' replaces the vocabulary 'world' of plugin 'neighbours'" in result.stderr
    exp = tmp_path / "exp.yaml"
    exp.write_text("steps:\n  - neighbours: {texts: [a star], vocabs: [world], k: 2}\n")
    run = invoke("-o", tmp_path / "out", "run", exp, "--run-dir", tmp_path / "run")
    assert run.exit_code == 0, run.output
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert record in manifest["plugins"]["replaced"]


def _plugin(name: str = "fake_parts", **functions) -> types.ModuleType:
    from probe.plugin import hookimpl

    module = types.ModuleType(name)
    module.__dict__.update({k: hookimpl(v) if k.startswith("register_") else v for k, v in functions.items()})
    return module


def test_a_perturbation_returning_a_string_is_one_line_naming_the_plugin(invoke):
    def register_perturbations(register):
        register("stringy", lambda tokens, rng: " ".join(tokens), "returns a str")

    result = invoke(
        "shuffle-test",
        "a red star left of a blue circle",
        "-p",
        "stringy",
        "--json",
        extra_plugins={"strp": lambda: _plugin(register_perturbations=register_perturbations)},
    )
    assert result.exit_code == 1 and result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert lines == [
        "Error: plugin 'strp', register_perturbations 'stringy': returned a str ('a red star left of a blue circle'), "
        "not a list of words (report this to the authors of 'strp')"
    ]


@pytest.mark.parametrize(
    ("penalty", "problem"),
    [
        (lambda images: images.sum(), "returned shape [], expected [1] (one penalty per image)"),
        (lambda images: images.sum((1, 2, 3)) * float("nan"), "returned a penalty that is not finite (nan or inf)"),
    ],
    ids=["scalar", "nan"],
)
def test_a_prior_without_one_finite_penalty_per_image_is_one_line_naming_the_plugin(invoke, tmp_path, penalty, problem):
    """A scalar prior would be broadcast into every image's loss without a word; one line, exit 1, no image."""

    def register_invert_priors(register):
        register("bad", lambda options, size: lambda ctx: penalty(ctx.images), "a wrong penalty")

    plugin = {"priorp": lambda: _plugin(register_invert_priors=register_invert_priors)}
    args = ["--out", tmp_path, "invert", "a red star", "--steps", "2", "--set", "priors.bad=1.0"]
    result = invoke(*args, extra_plugins=plugin)
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert lines == [
        f"Error: plugin 'priorp', register_invert_priors 'bad': {problem} (report this to the authors of 'priorp')"
    ]
    assert not list(tmp_path.rglob("*.png"))


def test_a_step_kind_with_too_few_outcomes_fails_without_writing_results(invoke, tmp_path):
    from probe.plugin import Outcome, StepKind

    def run(plan, chunk, ctx):
        return [Outcome(chunk.items[0].id, "done", {"n": 1})]  # one outcome for two items

    def normalise(opts):
        return {"texts": opts.text_list("texts", "texts")}

    def plan(inp):
        from probe.plugin import Chunk, Item

        items = [Item(f"{inp.step['name']}/{t}", inp.step["name"], t, {"text": t}) for t in inp.step["texts"]]
        return [Chunk(inp.step["name"], 0, inp.slot, items)]

    def register_experiment_steps(register):
        register(StepKind("short", {"texts": None}, normalise, run, plan=plan, about="too few outcomes"))

    exp = tmp_path / "exp.yaml"
    exp.write_text("steps:\n  - short: {texts: [a, b]}\n")
    result = invoke(
        "run",
        exp,
        "--run-dir",
        tmp_path / "run",
        extra_plugins={"few": lambda: _plugin(register_experiment_steps=register_experiment_steps)},
    )
    assert result.exit_code == 1, result.output
    assert "plugin 'few', register_experiment_steps 'short': run returned 1 outcomes for 2 items" in result.output
    records = [json.loads(p.read_text()) for p in (tmp_path / "run").glob("items/**/*.json")]
    assert records and {r["status"] for r in records} == {"failed"}  # nothing recorded as done


def test_a_loader_without_fingerprint_gets_one_from_its_weights():
    import torch

    from probe.models.loading import LoadedModel, _plugin_model
    from probe.models.specs import ModelSpec

    weights = {"w": 1.0}

    def load(target, allow_pickle=False):
        model = torch.nn.Linear(2, 2)
        torch.nn.init.constant_(model.weight, weights["w"])
        torch.nn.init.zeros_(model.bias)
        return LoadedModel(model, None, 32, (0.5,) * 3, (0.5,) * 3)

    def register_model_loaders(register):
        register("fp:", load, "no fingerprint")

    from probe.plugin import loaded_plugins

    with loaded_plugins({"fp": _plugin(register_model_loaders=register_model_loaders)}):
        spec = ModelSpec("plugin", "fp:", "x", "fp:x")
        first = _plugin_model(spec, False).fingerprint
        assert _plugin_model(spec, False).fingerprint == first
        weights["w"] = 2.0
        assert _plugin_model(spec, False).fingerprint != first


def test_a_plugin_exception_at_run_time_names_the_plugin_and_the_hook(invoke):
    def register_vocabularies(register):
        missing: dict[str, list[str]] = {}
        register("bad", lambda: missing["missing"], "raises KeyError")

    result = invoke(
        "neighbours",
        "star",
        "-v",
        "bad",
        extra_plugins={"kb": lambda: _plugin(register_vocabularies=register_vocabularies)},
    )
    assert result.exit_code == 1
    assert "Error: plugin 'kb', register_vocabularies 'bad': raised KeyError: 'missing'" in result.output
    assert "internal error" not in result.output


@pytest.mark.parametrize(
    "bad, problem",
    [
        ({"register_vocabulary": lambda register: None}, "register_vocabulary is not a probe hook"),
        ({"register_vocabularies": lambda register: register("x", list, replce=True)}, "replce"),
    ],
)
def test_misspelt_hooks_and_register_keywords_fail_the_plugin_at_load(invoke, bad, problem):
    from probe.plugin import hookimpl

    module = types.ModuleType("typo")
    for name, fn in bad.items():
        setattr(module, name, hookimpl(fn) if name == "register_vocabularies" else fn)
    module.register_commands = hookimpl(lambda app: None)  # type: ignore[attr-defined]
    rows = {
        r["name"]: r
        for r in json.loads(invoke("plugins", "--json", extra_plugins={"typo": lambda: module}).stdout)["plugins"]
    }
    assert rows["typo"]["status"] == "failed" and problem in rows["typo"]["reason"]


def test_an_unmarked_hook_is_reported(invoke):
    module = types.ModuleType("unmarked")
    module.register_commands = lambda app: None  # type: ignore[attr-defined]
    rows = {
        r["name"]: r
        for r in json.loads(invoke("plugins", "--json", extra_plugins={"u": lambda: module}).stdout)["plugins"]
    }
    assert rows["u"]["status"] == "failed" and "register_commands is not marked @hookimpl" in rows["u"]["reason"]


# ---------------------------------------------------------------- unknown NAME names the plugin that is off


def _off(monkeypatch, plugin: str) -> str:
    monkeypatch.setenv("PROBE_DISABLE_PLUGINS", plugin)
    return f"{plugin} (disabled: remove it from PROBE_DISABLE_PLUGINS)"


@pytest.mark.parametrize(
    "accessor, plugin, name",
    [
        ("model_loaders", "hf", "hf-transformers:"),
        ("vocabularies", "neighbours", "world"),
        ("perturbations", "shuffle", "shuffle-words"),
        ("step_kinds", "invert", "invert"),
        ("invert_transforms", "invert", "jitter"),
        ("invert_params", "invert", "fft"),
        ("invert_priors", "invert", "tv"),
        ("label_sets", "audit", "colours"),
        ("python_api", "score", "score"),
    ],
)
def test_every_kind_names_the_disabled_plugin(monkeypatch, accessor, plugin, name):
    import probe.registry

    off = _off(monkeypatch, plugin)
    with pytest.raises(Exception) as caught:
        getattr(probe.registry, accessor)().require(name)
    assert f"{name!r}" in str(caught.value) and off in str(caught.value)


def test_cli_messages_name_the_disabled_plugin(invoke, monkeypatch):
    off = _off(monkeypatch, "hf")
    result = invoke("-m", "hf-transformers:openai/clip", "neighbours", "star")
    assert result.exit_code == 1 and "no model loader for 'hf-transformers:openai/clip'" in result.output
    assert off in result.output
    from probe.registry import deactivate

    deactivate()
    off = _off(monkeypatch, "score")
    import probe

    with pytest.raises(Exception, match="score") as caught:
        probe.score(None, [], "a star")  # type: ignore[arg-type]
    assert off in str(caught.value)


@pytest.mark.slow
def test_a_slow_plugin_is_named_on_help_and_in_timings(invoke):
    import time

    def slow_import() -> types.ModuleType:
        time.sleep(0.25)
        return _plugin("slowmod", register_commands=lambda app: None)

    help_text = invoke("--help", extra_plugins={"slowpoke": slow_import}).stdout
    assert "Note: plugin 'slowpoke' took 0." in " ".join(help_text.split()) and "s to import" in help_text
    timings = invoke("plugins", "--timings", extra_plugins={"slowpoke": slow_import}).stdout
    row = next(line for line in timings.splitlines() if "slowpoke" in line)
    assert "slow" in row
    fast = invoke("--help").stdout
    assert "to import" not in fast


def test_an_api_1_plugin_with_unmarked_hooks_still_loads(invoke):
    """Plugin API 1 accepted a bare `def register_commands(app)`; API 2 plugins must mark it."""
    module = types.ModuleType("old_style")
    module.PROBE_API = 1  # type: ignore[attr-defined]

    def register_vocabularies(register):
        register("old-words", lambda: ["circle", "square"], "written for API 1")

    module.register_vocabularies = register_vocabularies  # type: ignore[attr-defined]
    result = invoke("vocabs", "--json", extra_plugins={"old": lambda: module})
    assert result.exit_code == 0 and "old-words" in result.stdout
