"""Audit fixtures: a small experiment file (tiny steps so the whole folder stays fast)."""

import pytest

FAST = "{steps: 1, size: 32, copies: 1}"

EXPERIMENT = f"""\
name: tiny
steps:
  - invert: {{name: shapes, prompts: [a star, a circle], seeds: 0-1, settings: {FAST}, batch: 2}}
  - label: {{images: shapes, labels: colours}}
  - bias: {{prompts: shapes, labels: colours, n: 1, settings: {FAST}, batch: 1}}
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
