"""Run folders: one model load, resume after interruption, shards merged equal an unsharded run."""

import json
import shutil
from pathlib import Path

import pytest
from probe_run.experiment import load_experiment
from probe_run.runner import merge_runs, run_plan

from probe.errors import ConfigError, ModelError, UsageError


def sessions(tiny_session):
    opened = []

    def session_for(spec):
        opened.append(spec)
        return tiny_session

    return session_for, opened


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every item record (minus timings), image, table and sheet of a run folder."""
    out = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_dir() or rel in ("manifest.json", "report.html"):
            continue
        if rel.startswith("items/"):
            record = json.loads(path.read_text())
            record.pop("seconds")
            out[rel] = json.dumps(record, sort_keys=True).encode()
        else:
            out[rel] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_session, experiment_text):
    """The experiment run whole and as 2 shards, once for this module."""
    root = tmp_path_factory.mktemp("runs")
    (root / "exp.yaml").write_text(experiment_text)
    plan = load_experiment(root / "exp.yaml")
    session_for, _ = sessions(tiny_session)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PROBE_CACHE_DIR", str(root / "cache"))
        results = {"whole": run_plan(plan, root / "whole", tiny_session, session_for)}
        for index in range(2):
            results[f"s{index}"] = run_plan(plan, root / f"s{index}", tiny_session, session_for, shard=(index, 2))
    return plan, root, results


def test_two_shards_merged_equal_the_unsharded_run(runs, tmp_path, tiny_session):
    plan, root, results = runs
    assert results["whole"].counts == {"done": len(plan.items), "failed": 0, "pending": 0}
    assert all(0 < results[s].ran < len(plan.items) for s in ("s0", "s1"))
    merged = merge_runs([root / "s0", root / "s1"], tmp_path / "merged")
    assert merged.counts == results["whole"].counts and merged.missing_shards == []
    a, b = snapshot(root / "whole"), snapshot(tmp_path / "merged")
    assert sorted(a) == sorted(b)
    assert any(k.startswith("images/") for k in a) and any(k.startswith("sheets/") for k in a)
    assert [k for k in a if a[k] != b[k]] == []
    manifest = json.loads((tmp_path / "merged" / "manifest.json").read_text())
    assert manifest["items"] == json.loads((root / "whole" / "manifest.json").read_text())["items"]
    assert manifest["model"]["fingerprint"] == tiny_session.fingerprint


def test_labels_of_a_second_image_step_merge_equal_to_the_unsharded_run(tmp_path, tiny_session):
    """The label step labels the second image step, whose chunks do not start at shard slot 0."""
    fast = "{steps: 1, size: 32, copies: 1}"
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"""\
steps:
  - invert: {{name: first, prompts: [a star], seeds: 0, settings: {fast}, batch: 1}}
  - invert: {{name: second, prompts: [a circle, a square], seeds: 0-1, settings: {fast}, batch: 2}}
  - label: {{images: second, labels: colours}}
""")
    plan = load_experiment(exp)
    session_for, _ = sessions(tiny_session)
    whole = run_plan(plan, tmp_path / "whole", tiny_session, session_for)
    for index in range(2):
        run_plan(plan, tmp_path / f"s{index}", tiny_session, session_for, shard=(index, 2))
    merged = merge_runs([tmp_path / "s0", tmp_path / "s1"], tmp_path / "merged")
    assert whole.counts == merged.counts == {"done": 9, "failed": 0, "pending": 0}
    a, b = snapshot(tmp_path / "whole"), snapshot(tmp_path / "merged")
    assert sorted(a) == sorted(b) and [k for k in a if a[k] != b[k]] == []


def test_merge_reports_missing_shards_and_refuses_mixed_experiments(runs, tmp_path):
    _plan, root, _ = runs
    partial = merge_runs([root / "s0"], tmp_path / "m")
    assert partial.missing_shards == [1] and partial.counts["pending"] > 0
    other = tmp_path / "other"
    shutil.copytree(root / "s1", other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["digest"] = "another"
    (other / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match="different experiment"):
        merge_runs([root / "s0", other], tmp_path / "m2")
    with pytest.raises(UsageError, match="not empty"):
        merge_runs([root / "s0"], tmp_path / "m")


def test_cli_merge_writes_the_unsharded_run_and_says_what_is_missing(runs, tmp_path, invoke):
    plan, root, results = runs
    result = invoke("merge", root / "s0", root / "s1", "-o", tmp_path / "merged", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"] == results["whole"].counts
    assert data["summary"] == json.loads((root / "whole" / "summary.json").read_text())
    assert snapshot(tmp_path / "merged") == snapshot(root / "whole")
    partial = invoke("merge", root / "s0", "-o", tmp_path / "partial")
    assert partial.exit_code == 1, partial.output  # a missing shard fails the merge (so `afterok` chains stop)
    pending = len(plan.items) - sum(len(c.items) for c in plan.chunks_for((0, 2)))
    assert f"0 failed, {pending} pending" in " ".join(partial.output.split()) and "missing shards: 1" in partial.output


def test_cli_merge_refuses_a_used_folder_and_mixed_experiments_in_one_line(runs, tmp_path, invoke):
    _, root, _ = runs
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "notes.txt").write_text("mine")
    result = invoke("merge", root / "s0", root / "s1", "-o", tmp_path / "used")
    assert result.exit_code == 2 and "is not empty" in result.stderr and "Traceback" not in result.output
    assert [p.name for p in (tmp_path / "used").iterdir()] == ["notes.txt"]
    other = tmp_path / "other"
    shutil.copytree(root / "s1", other)
    manifest = json.loads((other / "manifest.json").read_text())
    manifest["digest"] = "0" * len(manifest["digest"])
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = invoke("merge", root / "s0", other, "-o", tmp_path / "m")
    assert (
        result.exit_code == 2
        and "different experiment" in result.stderr
        and len(result.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "m").exists()


def test_resume_refuses_another_shard(runs, tiny_session):
    plan, root, _ = runs
    session_for, _ = sessions(tiny_session)
    with pytest.raises(ConfigError, match="holds shard"):
        run_plan(plan, root / "s0", tiny_session, session_for, shard=(0, 3), resume=True)


def test_interrupted_run_resumes_losing_only_the_chunk_in_flight(
    runs, tmp_path, experiment_file, tiny_session, monkeypatch
):
    plan = load_experiment(experiment_file)
    session_for, _ = sessions(tiny_session)
    from probe.plugin import lookup

    invert_kind = lookup("register_experiment_steps", "invert")
    real = invert_kind.run
    calls: list[int] = []
    killed: list[int] = []

    class Killed(Exception):
        """Stands in for Ctrl-C or a killed job (pytest reserves KeyboardInterrupt for itself)."""

    def interrupting(step, chunk, ctx):
        if step.kind != "invert":  # the bias step makes its images through the same kind
            return real(step, chunk, ctx)
        calls.append(chunk.index)
        if len(calls) == 2 and not killed:
            killed.append(chunk.index)
            raise Killed
        return real(step, chunk, ctx)

    monkeypatch.setattr(invert_kind, "run", interrupting)
    with pytest.raises(Killed):
        run_plan(plan, tmp_path / "run", tiny_session, session_for)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["counts"]["done"] == 2  # the first chunk (2 images) survived
    with pytest.raises(UsageError, match="already holds a run"):
        run_plan(plan, tmp_path / "run", tiny_session, session_for)
    calls.clear()
    result = run_plan(plan, tmp_path / "run", tiny_session, session_for, resume=True)
    assert result.skipped == 2 and calls == [1]  # chunk 0 was not recomputed
    assert result.counts["pending"] == 0
    assert snapshot(tmp_path / "run") == snapshot(runs[1] / "whole")


@pytest.mark.slow
def test_resume_retries_the_items_that_failed(tmp_path, experiment_file, tiny_session, monkeypatch):
    """A failed item is not finished: --resume computes it again (a transient error does not stay)."""
    from probe.plugin import lookup

    plan = load_experiment(experiment_file)
    session_for, _ = sessions(tiny_session)
    invert_kind = lookup("register_experiment_steps", "invert")
    real = invert_kind.run
    calls: list[tuple[str, int]] = []
    failed: list[int] = []

    def failing_once(step, chunk, ctx):
        calls.append((step.name, chunk.index))
        if step.kind == "invert" and chunk.index == 0 and not failed:
            failed.append(chunk.index)
            raise ModelError("a transient error")  # a ProbeError fails the chunk's items
        return real(step, chunk, ctx)

    monkeypatch.setattr(invert_kind, "run", failing_once)
    first = run_plan(plan, tmp_path / "run", tiny_session, session_for)
    assert first.counts["failed"] >= 1 and first.exit_code == 1
    failed_step = calls[0][0]
    calls.clear()
    again = run_plan(plan, tmp_path / "run", tiny_session, session_for, resume=True)
    assert (failed_step, 0) in calls
    assert again.counts == {"done": len(plan.items), "failed": 0, "pending": 0}, (calls, again.failures)
    assert again.exit_code == 0


def test_labeller_is_another_session(tmp_path, tiny_session):
    exp = tmp_path / "e.yaml"
    exp.write_text(
        "steps:\n  - bias: {prompts: shapes, labels: colours, n: 1, settings: {steps: 1, size: 32, copies: 1}, "
        "labeller: ViT-B-32@random}\n"
    )
    session_for, opened = sessions(tiny_session)
    result = run_plan(load_experiment(exp), tmp_path / "run", tiny_session, session_for)
    assert opened == ["ViT-B-32@random"] and result.counts["done"] == 2
    assert "ViT-B-32@random" in json.loads((tmp_path / "run" / "manifest.json").read_text())["labellers"]


@pytest.mark.slow
def test_cli_run_loads_the_model_once(tmp_path, experiment_file, tiny_spec, invoke, cpu, monkeypatch):
    from probe.cli import state as cli_state

    loads = []
    real = cli_state.State.session_for

    def counting(self, model):
        before = self.loads
        session = real(self, model)
        loads.append(self.loads - before)
        return session

    monkeypatch.setattr(cli_state.State, "session_for", counting)
    exp = tmp_path / "e.yaml"
    exp.write_text(
        "name: cli\nsteps:\n"
        "  - invert: {name: shapes, prompts: [a star], n: 2, settings: {steps: 1, size: 32, copies: 1}}\n"
        "  - label: {images: shapes, labels: colours}\n"
    )
    result = invoke("--model", tiny_spec, "-o", tmp_path / "out", "run", exp, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["counts"] == {"done": 4, "failed": 0, "pending": 0}
    assert sum(loads) == 1
    assert (tmp_path / "out" / "runs" / "cli" / "tables" / "label.md").is_file()
    again = invoke("--model", tiny_spec, "-o", tmp_path / "out", "run", exp)
    assert again.exit_code == 2 and "already holds a run (pass --resume" in again.stderr
    resumed = invoke("--model", tiny_spec, "-o", tmp_path / "out", "run", exp, "--resume", "--json")
    assert resumed.exit_code == 0 and json.loads(resumed.stdout)["skipped"] == 4


def test_cli_reports_yaml_errors_with_line(tmp_path, invoke):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - invert: {prompts: [a], seeds: x}\n")
    result = invoke("run", bad)
    assert result.exit_code == 2
    assert "bad.yaml:2: steps[0].invert.seeds: cannot read seeds 'x'" in result.stderr
    assert "Traceback" not in result.stderr
