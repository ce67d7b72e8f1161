"""Fault scenarios: helpers to run the real `probe` executable and small fast inversion settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FAST = ["--steps", "2", "--size", "32", "--copies", "1"]


def probe_exe() -> str:
    """The venv's `probe` next to the running interpreter."""
    return str(Path(sys.executable).with_name("probe"))


@pytest.fixture
def probe_env(tmp_path) -> dict[str, str]:
    """Environment for subprocess runs: the test's cache folder, CPU, no plugin filters."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_")}
    env.update(PROBE_CACHE_DIR=os.environ["PROBE_CACHE_DIR"], PROBE_DEVICE="cpu", HF_HUB_OFFLINE="1")
    return env


def run_probe(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [probe_exe(), *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
