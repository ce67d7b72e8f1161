"""The plugin guide's complete example package (docs/plugins.md) works verbatim as an installed
third-party package."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "probe-similarity"


def pip_install_to(target: Path, package: Path) -> Path:
    """Install a plugin folder as a user would (pip, no dependencies) into its own site folder."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(package),
        ],
        check=True,
        capture_output=True,
    )
    return target


def test_the_guide_shows_the_example_files_verbatim():
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(?:toml|python)\n(.*?)```", guide, re.S)
    for name in ("pyproject.toml", "probe_similarity.py"):
        assert (EXAMPLE / name).read_text() in blocks, (
            f"docs/plugins.md is out of date with examples/probe-similarity/{name}"
        )
    assert "(examples/probe-similarity)" in (ROOT / "README.md").read_text(), "the README points at the example"


@pytest.mark.slow
def test_example_installs_and_registers_through_entry_points(tmp_path, tiny_spec):
    target = pip_install_to(tmp_path / "site", EXAMPLE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    run = lambda *args: subprocess.run(
        [sys.executable, "-m", "probe.cli.app", *args], capture_output=True, text=True, env=env
    )
    rows = {r["name"]: r for r in json.loads(run("plugins", "--json").stdout)["plugins"]}
    assert rows["similarity"]["status"] == "loaded"
    assert rows["similarity"]["distribution"] == "probe-similarity"
    out = run("-m", tiny_spec, "--device", "cpu", "similarity", "a red star", "a blue circle")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("a red star\t1.000\t")


PALETTE = ROOT / "examples" / "probe-palette"


@pytest.mark.slow
def test_palette_example_extends_the_built_in_commands(tmp_path):
    """The second example adds a vocabulary, a perturbation and a prior; the built-in commands use them."""
    target = pip_install_to(tmp_path / "site", PALETTE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}

    def run(*args):
        out = subprocess.run(
            [sys.executable, "-m", "probe.cli.app", "--device", "cpu", *args], capture_output=True, text=True, env=env
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    rows = {r["name"]: r for r in run("plugins", "--json")["plugins"]}
    assert rows["palette"]["status"] == "loaded" and rows["palette"]["api"] == "1"
    assert sorted(rows["palette"]["registered"]) == [
        "invert prior muted",
        "perturbation swap-colours",
        "vocabulary palette",
    ]
    found = run("neighbours", "a red star", "-v", "palette", "--k", "3", "--json")["results"][0]["neighbours"]
    assert len(found) == 3 and {n["vocab"] for n in found} == {"palette"}
    assert all(n["flagged"] == (n["category"] == "warm") for n in found)
    listed = [p["name"] for p in run("shuffle-test", "--list", "--json")]
    assert "swap-colours" in listed and "shuffle-words" in listed
    report = run("shuffle-test", "a red star left of a blue circle", "--perturb", "swap-colours", "--json")
    assert [v["text"] for v in report["items"][0]["variants"]] == ["a blue star left of a red circle"]
    inverted = run(
        "-o", str(tmp_path / "out"), "invert", "a red star", "--set", "priors.muted=0.5", "--steps", "30", "--json"
    )
    assert inverted["settings"]["priors"]["muted"] == {"weight": 0.5} and inverted["images"][0]["status"] == "done"


@pytest.mark.slow
def test_the_example_plugins_own_tests_pass_when_it_is_installed(tmp_path):
    """The guide's testing recipe against an installed copy: run_cli and loaded_plugins with the
    module while the same plugin is installed through its entry point (no 'already registered')."""
    target = pip_install_to(tmp_path / "site", EXAMPLE)
    shutil.copy(EXAMPLE / "test_probe_similarity.py", tmp_path / "test_probe_similarity.py")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider", "test_probe_similarity.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout
