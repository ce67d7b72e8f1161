"""The Ray engine (`--engine ray`): the same folder as a local run, byte for byte, also when a worker
dies mid-run or the driver is interrupted and resumed; without Ray installed, one line and exit 2.

Ray runs here on the local machine (2 CPUs, no dashboard), started once for the module."""

from __future__ import annotations

import json
import re
import sys

import pytest
from probe_run.experiment import load_experiment
from probe_run.runner import run_plan

from tests.run.test_runner import snapshot

# The workers judge inversions as a user's run does (the test process's patch does not reach them),
# so the local runs compared with theirs judge too: the experiment makes done and failed items both.
JUDGE_INVERSIONS = True

FAST = "{steps: 6, size: 32, copies: 1}"
EXPERIMENT = f"""\
name: scale
steps:
  - invert: {{name: shapes, prompts: [a red star, a blue circle], seeds: 0-1, settings: {FAST}, batch: 1}}
  - label: {{images: shapes, labels: colours}}
  - neighbours: {{texts: [a star, a red circle], vocabs: [world], k: 3, batch: 1}}
"""
SESSION = {"model": "shapes-tiny", "device": "cpu", "precision": "fp32", "allow_pickle": False}


class Killed(Exception):
    """Stands in for Ctrl-C or SIGTERM of the driver (pytest reserves KeyboardInterrupt for itself)."""


@pytest.fixture(scope="module")
def ray_here():
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local(tmp_path_factory, builtin_session):
    """The experiment's file and its unsharded local run (with the shipped model on CPU), on one
    thread: what each of 2 workers on Ray's 2 cores computes with (CPU kernels may round differently
    with another thread count, so equal results are promised for equal threads)."""
    import torch

    root = tmp_path_factory.mktemp("local")
    (root / "exp.yaml").write_text(EXPERIMENT)
    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROBE_CACHE_DIR", str(root / "cache"))
        torch.set_num_threads(1)
        try:
            plan = load_experiment(root / "exp.yaml")
            result = run_plan(plan, root / "run", builtin_session, lambda s: builtin_session)
        finally:
            torch.set_num_threads(threads)
    snap = snapshot(root / "run")
    assert result.counts["done"] and result.counts["failed"]  # both kinds of record are compared
    assert any(k.startswith("images/") for k in snap) and any(k.startswith("tables/") for k in snap)
    return root / "exp.yaml", root / "run", result


def executor(plan, workers: int = 2):
    from probe_run.engines import EngineOptions
    from probe_run.ray_engine import RayExecutor

    return RayExecutor(EngineOptions("ray", workers, session=SESSION), plan)


@pytest.mark.slow
def test_two_workers_write_the_bytes_of_a_local_run(ray_here, local, tmp_path, invoke, terminal_stderr):
    exp, whole, local_result = local
    args = ("--device", "cpu", "run", exp, "--engine", "ray", "--workers", "2", "--run-dir", tmp_path / "r")
    result = invoke(*args, "--json")
    assert result.exit_code == local_result.exit_code, result.stderr
    data = json.loads(result.stdout)  # the --json summary: per worker its chunks, items and seconds
    assert data["engine"] == "ray" and data["counts"] == local_result.counts
    workers = {w["name"]: w for w in data["workers"]}
    assert sorted(workers) == ["w0", "w1"] and all(w["chunks"] > 0 and w["seconds"] > 0 for w in workers.values())
    assert sum(w["items"] for w in workers.values()) == len(local_result.plan.items)
    bar = terminal_stderr.getvalue()  # the progress bar: items of the whole run and each worker's rate
    assert f"{local_result.counts['done']}/{len(local_result.plan.items)}" in bar  # the bar counts done items
    assert re.search(r"w0 \d+\.\d\d/s · w1 \d+\.\d\d/s", bar)
    a, b = snapshot(whole), snapshot(tmp_path / "r")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["items"] == json.loads((whole / "manifest.json").read_text())["items"]
    assert manifest["model"]["fingerprint"] == json.loads((whole / "manifest.json").read_text())["model"]["fingerprint"]
    from probe_run.report import render_report

    def page(folder):  # the report, less the manifest's times (created / updated)
        return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", "T", render_report(folder).replace(str(folder), "RUN"))

    assert page(tmp_path / "r") == page(whole)


@pytest.mark.slow
def test_a_killed_worker_has_its_chunk_computed_again_elsewhere(ray_here, local, tmp_path):
    exp, whole, _ = local
    plan = load_experiment(exp)
    killed: list[str] = []
    with executor(plan) as ex:

        def kill_a_busy_worker(done: int, total: int, step: str) -> None:
            # after the second chunk the worker that finished the first is computing the third
            if done >= 2 and not killed:
                killed.extend(ex.busy)
                for name in killed:
                    ray_here.kill(ex.actors[name])

        result = run_plan(plan, tmp_path / "r", None, None, executor=ex, on_progress=kill_a_busy_worker)
    assert len(killed) == 1
    lost = {w["name"]: w["lost"] for w in result.workers}
    assert lost[killed[0]] == 1 and sum(lost.values()) == 1
    assert result.counts["pending"] == 0
    assert snapshot(tmp_path / "r") == snapshot(whole)


@pytest.mark.slow
def test_interrupted_driver_keeps_finished_items_and_resumes(ray_here, local, tmp_path, invoke):
    exp, whole, _ = local
    plan = load_experiment(exp)
    busy: list[str] = []

    def interrupt(done: int, total: int, step: str) -> None:
        if done == 1:  # meanwhile a second driver on the folder is refused
            second = invoke("run", exp, "--engine", "ray", "--run-dir", tmp_path / "r")
            busy.append(f"{second.exit_code} {second.stderr}")
        if done >= 2:
            raise Killed

    with pytest.raises(Killed), executor(plan) as ex:
        run_plan(plan, tmp_path / "r", None, None, executor=ex, on_progress=interrupt)
    assert busy[0].startswith("2 ") and f"another probe run is writing to {tmp_path / 'r'}" in busy[0]
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    finished = manifest["counts"]["done"] + manifest["counts"]["failed"]
    assert finished >= 2 and manifest["counts"]["pending"] > 0
    with executor(plan) as ex:
        result = run_plan(plan, tmp_path / "r", None, None, executor=ex, resume=True)
    assert result.skipped >= 2 and result.counts["pending"] == 0
    assert snapshot(tmp_path / "r") == snapshot(whole)


def test_without_ray_one_line_names_the_extra_and_nothing_loads(invoke, tmp_path, monkeypatch):
    from probe.cli.state import State

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as when the extra is absent
    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("the model loaded"))
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT)
    for command in (["run", exp], ["bias", "--prompts", "shapes", "--labels", "colours", "--n", "1"]):
        result = invoke("-o", tmp_path, *command, "--engine", "ray")
        assert result.exit_code == 2, result.output
        assert result.stderr.count("\n") == 1 and 'pip install -e ".[ray]"' in result.stderr
    assert not (tmp_path / "runs").exists()


def test_worker_options_need_the_ray_engine(invoke, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT)
    result = invoke("-o", tmp_path, "run", exp, "--workers", "2")
    assert result.exit_code == 2 and "--workers and --address need --engine ray" in result.stderr
    result = invoke("-o", tmp_path, "run", exp, "--engine", "spark")
    assert result.exit_code == 2 and "unknown engine 'spark'" in result.stderr


@pytest.mark.slow
def test_a_model_a_worker_cannot_open_is_one_line_as_locally(ray_here, local, tmp_path, invoke):
    exp, _, _ = local
    args = ("--device", "cpu", "--precision", "fp16", "run", exp)
    here = invoke("-o", tmp_path / "local", *args)
    result = invoke("-o", tmp_path / "ray", *args, "--engine", "ray", "--workers", "1")
    assert here.exit_code == result.exit_code == 2, result.output
    assert "fp16 autocast is not supported on CPU (use fp32 or bf16 on CPU)" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
