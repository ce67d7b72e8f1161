"""Every hook's example in docs/plugins.md is a working third-party plugin: each is loaded as a
plugin module and the commands shown under it run, with the effect a user would check."""

from __future__ import annotations

import json
import re
import shlex
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "plugins.md"


def _sections() -> dict[str, tuple[str, list[list[str]]]]:
    """hook name -> (the example module's source, the `$ probe ...` commands under it)."""
    text = GUIDE.read_text(encoding="utf-8")
    out = {}
    for part in re.split(r"^### `", text, flags=re.M)[1:]:
        hook = part.split("`", 1)[0]
        code = re.search(r"```python\n(.*?)```", part, re.S)
        console = re.search(r"```console\n(.*?)```", part, re.S)
        commands = [shlex.split(line[2:])[1:] for line in console.group(1).splitlines() if line.startswith("$ probe ")]
        out[hook] = (code.group(1), commands)
    return out


SECTIONS = _sections()


def _module(hook: str) -> types.ModuleType:
    module = types.ModuleType(f"guide_{hook}")
    sys.modules[module.__name__] = module  # as an installed plugin's module would be (dataclasses need it)
    exec(compile(SECTIONS[hook][0], f"{GUIDE}:{hook}", "exec"), module.__dict__)
    return module


def _run(invoke, hook: str, tmp_path: Path) -> list:
    module = _module(hook)
    results = []
    for args in SECTIONS[hook][1]:
        args = [
            str(tmp_path / a) if a.startswith("probe-out/guide") else str(ROOT / a) if a.startswith("docs/") else a
            for a in args
        ]
        result = invoke(*args, extra_plugins={hook: lambda: module})
        assert result.exit_code == 0, f"{hook}: probe {' '.join(args)}\n{result.output}"
        results.append(result)
    return results


def test_the_guide_has_one_example_per_hook():
    from probe.registry import HOOKS

    assert sorted(SECTIONS) == sorted(HOOKS)
    assert all(commands for _, commands in SECTIONS.values())


def test_commands(invoke, tmp_path):
    (result,) = _run(invoke, "register_commands", tmp_path)
    sim = json.loads(result.stdout)["similarity"]
    assert sim[0][0] == pytest.approx(1.0, abs=1e-5) and sim[0][1] < sim[0][0]


@pytest.mark.slow
def test_model_loaders(invoke, tmp_path):
    (result,) = _run(invoke, "register_model_loaders", tmp_path)
    assert "toy:3" in result.stdout
    assert invoke("-m", "toy:3", "neighbours", "star").exit_code != 0  # without the plugin the prefix means nothing


@pytest.mark.slow
def test_vocabularies(invoke, tmp_path):
    neighbours, vocabs = _run(invoke, "register_vocabularies", tmp_path)
    words = re.findall(r"│ \d+ │ (\w+)", neighbours.stdout)
    assert len(words) == 3 and set(words) <= {"red", "orange", "yellow", "blue", "green", "purple"}
    assert "warm-cool" in vocabs.stdout and "world" in vocabs.stdout


def test_perturbations(invoke, tmp_path):
    listing, run = _run(invoke, "register_perturbations", tmp_path)
    assert "drop-word" in listing.stdout and "shuffle-words" in listing.stdout
    assert [row["name"] for row in json.loads(run.stdout)["rows"]] == ["drop-word", "all"]


def test_experiment_steps(invoke, tmp_path):
    _run(invoke, "register_experiment_steps", tmp_path)
    records = sorted(
        (tmp_path / "probe-out" / "guide-run" / "runs" / "token-count" / "items" / "token-count").glob("*.json")
    )
    tokens = {json.loads(p.read_text())["result"]["tokens"] for p in records}
    assert tokens == {5, 6}  # start + 3 words + end, start + 4 words + end


@pytest.mark.slow
def test_invert_transforms(invoke, tmp_path):
    _run(invoke, "register_invert_transforms", tmp_path)
    sidecar = json.loads(
        (tmp_path / "probe-out" / "guide-transform" / "invert" / "a-red-star" / "seed-0.json").read_text()
    )
    assert "hflip" in json.dumps(sidecar)


@pytest.mark.slow
def test_invert_params(invoke, tmp_path):
    _run(invoke, "register_invert_params", tmp_path)
    assert (tmp_path / "probe-out" / "guide-param" / "invert" / "a-red-star" / "seed-0.png").is_file()


@pytest.mark.slow
def test_invert_priors(invoke, tmp_path):
    _run(invoke, "register_invert_priors", tmp_path)
    sidecar = json.loads((tmp_path / "probe-out" / "guide-prior" / "invert" / "a-red-star" / "seed-0.json").read_text())
    assert '"desaturate": {"weight": 0.5}' in json.dumps(sidecar)


@pytest.mark.slow
def test_label_sets(invoke, tmp_path):
    (result,) = _run(invoke, "register_label_sets", tmp_path)
    assert "warm" in result.stdout and "cool" in result.stdout


def test_python_api(invoke, tmp_path):
    import probe

    (result,) = _run(invoke, "register_python_api", tmp_path)
    rows = {r["name"]: r for r in json.loads(result.stdout)["plugins"]}
    assert "Python API function similarity" in rows["register_python_api"]["registered"]
    found = probe.similarity(probe.open(), ["a red star", "<b>a blue star</b>"])
    assert found.matrix[0][0] == pytest.approx(1.0, abs=1e-5)
    assert "&lt;b&gt;a blue star&lt;/b&gt;" in found._repr_html_()


def test_unknown_part_names_the_plugin_state(invoke, tmp_path, monkeypatch):
    """Without the plugin, its part is an unknown name that lists what exists."""
    result = invoke("-o", tmp_path, "invert", "a red star", "--set", "priors.desaturate=0.5", "--steps", "1")
    assert result.exit_code == 2 and "unknown prior 'desaturate'" in result.output and "tv, l1" in result.output


def test_the_testing_recipe_runs():
    text = GUIDE.read_text(encoding="utf-8")
    recipe = re.search(r"## Testing a plugin.*?```python\n(.*?)```", text, re.S).group(1)
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "probe_similarity", ROOT / "examples" / "probe-similarity" / "probe_similarity.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["probe_similarity"] = module
    try:
        namespace: dict = {}
        exec(compile(recipe, f"{GUIDE}:testing", "exec"), namespace)
        tests = [name for name in namespace if name.startswith("test_")]
        assert len(tests) == 2  # the command and the Python API function
        for name in tests:
            namespace[name]()
    finally:
        del sys.modules["probe_similarity"]


def test_the_guides_files_are_the_shipped_ones():
    text = GUIDE.read_text(encoding="utf-8")
    yaml_block = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    assert yaml_block == (ROOT / "docs" / "examples" / "token-count.yaml").read_text(encoding="utf-8")
    toml_block = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    assert toml_block in (ROOT / "examples" / "probe-palette" / "pyproject.toml").read_text(encoding="utf-8")
