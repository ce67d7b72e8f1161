"""Interrupting `probe invert` (Ctrl-C, SIGTERM, kill -9) never loses a finished image, and the rerun
finishes with files byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import probe_exe, run_probe

pytestmark = pytest.mark.slow  # every test here starts `probe` subprocesses and kills them mid-run

PROMPTS = ["a red star", "a blue circle"]
ARGS = [
    "--seeds",
    "0-1",
    "--batch-size",
    "2",
    "--steps",
    "16",
    "--size",
    "32",
    "--copies",
    "1",
    "--set",
    "resize_at=[]",
]


def invert_args(out: Path) -> list[str]:
    return ["-o", str(out), "invert", *PROMPTS, *ARGS]


def pngs(out: Path) -> dict[str, bytes]:
    """Every PNG of the invert folder (images and contact sheet) by relative path."""
    folder = out / "invert"
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.png"))}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> dict[str, bytes]:
    """An uninterrupted run, in a subprocess like the interrupted ones."""
    import os

    out = tmp_path_factory.mktemp("whole")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_")}
    env.update(PROBE_CACHE_DIR=str(tmp_path_factory.mktemp("cache")), PROBE_DEVICE="cpu")
    done = run_probe(invert_args(out), env, out)
    assert done.returncode == 0, done.stderr
    files = pngs(out)
    assert len(files) == 5  # 2 prompts x 2 seeds + the contact sheet
    return files


def interrupt_after_first_chunk(out: Path, env: dict[str, str], how: signal.Signals) -> subprocess.CompletedProcess:
    """Start the run, wait until the first chunk's images are saved, then send `how`."""
    proc = subprocess.Popen(
        [probe_exe(), *invert_args(out)], env=env, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    first = out / "invert" / "a-red-star"
    deadline = time.monotonic() + 120
    while not (first / "seed-0.json").exists() or not (first / "seed-1.json").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first chunk never finished"
        time.sleep(0.02)
    proc.send_signal(how)
    stdout, stderr = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_interrupted_run_keeps_finished_images_and_resumes_to_identical_bytes(tmp_path, probe_env, baseline, how):
    stopped = interrupt_after_first_chunk(tmp_path, probe_env, how)
    if how == signal.SIGKILL:
        assert stopped.returncode == -signal.SIGKILL
    else:
        assert stopped.returncode == 130, stopped.stderr
    for seed in (0, 1):  # the finished chunk is on disk, complete
        png = tmp_path / "invert" / "a-red-star" / f"seed-{seed}.png"
        assert png.read_bytes() == baseline[f"a-red-star/seed-{seed}.png"]
    resumed = run_probe(invert_args(tmp_path), probe_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "invert").rglob("*.tmp"))  # what a kill -9 mid-write leaves is cleaned up
    assert "2 of 4 images already finished" in resumed.stderr
    assert pngs(tmp_path) == baseline


RUN_EXPERIMENT = (
    "name: rel\n"
    "steps:\n"
    "  - invert: {prompts: [a red star, a blue circle], seeds: 0-1, "
    "settings: {steps: 16, size: 32, copies: 1, resize_at: []}, batch: 2}\n"
)


def run_outputs(folder: Path) -> dict[str, bytes]:
    """A run folder's images, contact sheets and tables (records and manifest hold timings)."""
    keep = [p for p in folder.rglob("*") if p.is_file() and (p.suffix == ".png" or p.parent.name == "tables")]
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(keep)}


@pytest.fixture(scope="module")
def run_baseline(tmp_path_factory) -> tuple[Path, dict[str, bytes]]:
    import os

    root = tmp_path_factory.mktemp("run-whole")
    exp = root / "exp.yaml"
    exp.write_text(RUN_EXPERIMENT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROBE_")}
    env.update(PROBE_CACHE_DIR=str(tmp_path_factory.mktemp("cache")), PROBE_DEVICE="cpu")
    done = run_probe(["-o", root, "run", exp], env, root)
    assert done.returncode == 0, done.stderr
    return exp, run_outputs(root / "runs" / "rel")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "kill-9"])
def test_interrupted_probe_run_resumes_to_identical_bytes(tmp_path, probe_env, run_baseline, how):
    exp, whole = run_baseline
    proc = subprocess.Popen(
        [probe_exe(), "-o", str(tmp_path), "run", str(exp)],
        env=probe_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    records = tmp_path / "runs" / "rel" / "items" / "invert"
    deadline = time.monotonic() + 120
    while len(list(records.glob("*.json"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the first chunk never finished"
        time.sleep(0.02)
    proc.send_signal(how)
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    resumed = run_probe(["-o", tmp_path, "run", exp, "--resume", "--json"], probe_env, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert not list((tmp_path / "runs").rglob("*.tmp"))  # what a kill -9 mid-write leaves is cleaned up
    assert json.loads(resumed.stdout)["skipped"] >= 2  # the finished chunk was kept, not recomputed
    assert run_outputs(tmp_path / "runs" / "rel") == whole
