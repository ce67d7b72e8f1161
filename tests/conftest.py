"""Shared fixtures: a tiny open_clip model made on disk by the tests, sessions over it, a CLI runner."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# Every test sees the same console width, whatever the terminal pytest runs in: the width a pipe gets
# (rich's default). A console that stands for a terminal is wide enough that no line a test prints
# wraps, whatever the temp folder's path length (--basetemp) makes of the paths in it.
PIPE_COLUMNS = 80
TERMINAL_COLUMNS = 4096
# Settings of the developer's terminal that rich and typer read (some when a console is created, at
# import): cleared before any test module imports them, so tests see a pipe whatever shell runs pytest.
TERMINAL_SETTINGS = ("FORCE_COLOR", "NO_COLOR", "TERMINAL_WIDTH", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "LINES")
for _name in TERMINAL_SETTINGS:
    os.environ.pop(_name, None)
os.environ["COLUMNS"] = str(PIPE_COLUMNS)

TINY_CFG: dict[str, Any] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


@pytest.fixture(autouse=True, scope="module")
def _inversions_not_judged(request):
    """Inversions of a few steps on a random tiny CLIP rarely beat their start or the presets' floor, so
    they would be recorded `failed`; tests of the files, resume and batching around an inversion see
    every one judged passed. Modules that test the verdict itself set JUDGE_INVERSIONS = True.
    Module-scoped, so module-scoped fixtures that run inversions see it too."""
    with pytest.MonkeyPatch.context() as mp:
        if not getattr(request.module, "JUDGE_INVERSIONS", False):
            mp.setattr("probe_invert.render.judge", lambda *args: "")
        yield


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder, no plugin filters, no network and a fixed console width."""
    monkeypatch.setenv("PROBE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("COLUMNS", str(PIPE_COLUMNS))  # back to the pipe's width after a test that changed it
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for var in (
        "PROBE_LOAD_PLUGINS",
        "PROBE_DISABLE_PLUGINS",
        "PROBE_MODEL",
        "PROBE_CONFIG",
        "PROBE_OUT",
        "PROBE_DEVICE",
    ):
        monkeypatch.delenv(var, raising=False)
    yield
    from probe.registry import deactivate

    deactivate()  # a test's plugins (fakes, disabled built-ins) never reach the next test


def write_tiny_model(folder: Path, seed: int) -> Path:
    """Save a seeded random tiny CLIP as a local-dir: folder (open_clip_config.json + safetensors)."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A local-dir: folder holding a seeded random tiny CLIP, made by the tests."""
    return write_tiny_model(tmp_path_factory.mktemp("tiny-clip"), seed=1)


@pytest.fixture(scope="session")
def tiny_spec(tiny_model_dir) -> str:
    return f"local-dir:{tiny_model_dir}"


@pytest.fixture(scope="session")
def tiny_session(tiny_spec):
    from probe.session import Session

    return Session.open(tiny_spec, device="cpu")


@pytest.fixture(scope="session")
def builtin_session():
    """The shipped shapes-tiny model on CPU in fp32, loaded once for every test that needs it."""
    from probe.session import Session

    return Session.open("shapes-tiny", device="cpu")


@pytest.fixture
def terminal_stderr(monkeypatch):
    """stderr as a terminal (what the user sees), captured: status lines and progress bars show."""
    import io

    from rich.console import Console

    from probe.cli import console

    buffer = io.StringIO()
    terminal = Console(file=buffer, force_terminal=True, width=TERMINAL_COLUMNS, highlight=False)
    monkeypatch.setattr(console, "err", terminal)
    return buffer


@pytest.fixture
def runner():
    from typer.testing import CliRunner

    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the probe CLI in-process; returns the result (exit_code, stdout, stderr)."""
    from probe.cli.app import build_app

    def run(*args: str, extra_plugins: dict | None = None):
        return runner.invoke(build_app(extra_plugins), [str(a) for a in args])

    return run


# A small experiment file for the engine (tests/run) and the audits built on it (tests/audit): tiny steps
# so whole folders stay fast.
EXPERIMENT_FAST = "{steps: 1, size: 32, copies: 1}"


EXPERIMENT = f"""\
name: tiny
steps:
  - invert: {{name: shapes, prompts: [a star, a circle], seeds: 0-1, settings: {EXPERIMENT_FAST}, batch: 2}}
  - label: {{images: shapes, labels: colours}}
  - bias: {{prompts: shapes, labels: colours, n: 1, settings: {EXPERIMENT_FAST}, batch: 1}}
  - neighbours: {{texts: [a star, a red circle], vocabs: [world], k: 3, batch: 1}}
"""


@pytest.fixture(scope="session")
def experiment_text():
    return EXPERIMENT


@pytest.fixture
def experiment_file(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture
def cpu(monkeypatch):
    """Sessions on CPU whatever the machine has."""
    monkeypatch.setenv("PROBE_DEVICE", "cpu")


@pytest.fixture(scope="session")
def other_builtin_spec(tmp_path_factory) -> str:
    """A second real model for comparisons: the shipped shapes-tiny weights with a perturbed text
    projection (so its text embeddings, neighbours and scores differ), loaded as `shapes-tiny@FILE`."""
    from importlib import resources

    import torch
    from safetensors.torch import load_file, save_file

    weights = load_file(str(resources.files("probe.models").joinpath("weights/shapes-tiny.safetensors")))
    projection = weights["text_projection"]
    noise = torch.randn(projection.shape, generator=torch.Generator().manual_seed(0))
    weights["text_projection"] = projection + 0.5 * projection.std() * noise
    path = tmp_path_factory.mktemp("other-model") / "other.safetensors"
    save_file(weights, str(path))
    return f"shapes-tiny@{path}"
