"""Exit codes a scheduler can trust: failures and incomplete merges are non-zero; bad specs fail first."""

from __future__ import annotations

import pytest

EXPERIMENT = """\
name: rel
steps:
  - invert: {prompts: [a star, a circle], seeds: 0-1, settings: {steps: 1, size: 32, copies: 1}, batch: 2}
"""


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT)
    return path


def test_bias_with_unknown_labeller_fails_before_any_inversion(invoke, tmp_path, monkeypatch):
    import probe_run.engines as steps

    monkeypatch.setattr(steps, "run_chunk", lambda *a, **k: pytest.fail("an inversion ran"))
    result = invoke(
        "-o",
        tmp_path,
        "--device",
        "cpu",
        "bias",
        "--prompts",
        "shapes",
        "--labels",
        "colours",
        "--n",
        "1",
        "--steps",
        "1",
        "--labeller",
        "nosuchmodel",
    )
    assert result.exit_code == 2, result.output
    assert "nosuchmodel" in result.stderr and "labeller" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_run_where_every_item_failed_exits_non_zero(invoke, tmp_path):
    """A step whose every item fails (here a plugin's step kind that always raises) makes `probe run` exit 1."""
    import types

    from probe.plugin import Item, ProbeError, StepKind, chunked, hookimpl

    def run(step, chunk, ctx):
        raise ProbeError("this step always fails")

    def plan(p):
        name = p.step["name"]
        return chunked(name, [Item(f"{name}/{t}", name, t, {"text": t}) for t in p.step["texts"]], 1, p.slot)

    module = types.ModuleType("failing_steps")
    module.register_experiment_steps = hookimpl(  # type: ignore[attr-defined]  # a plugin built here
        lambda register: register(
            StepKind(
                "always-fails", {"texts": None}, lambda o: {"texts": o.text_list("texts", "texts")}, run, plan=plan
            )
        )
    )
    exp = tmp_path / "fails.yaml"
    exp.write_text("steps:\n  - always-fails: {texts: [a, b]}\n")
    result = invoke("-o", tmp_path / "o", "--device", "cpu", "run", exp, extra_plugins={"failing": lambda: module})
    assert result.exit_code == 1, result.output
    assert "2 failed" in result.stderr


def test_run_with_an_over_long_prompt_fails_before_any_step(invoke, tmp_path):
    exp = tmp_path / "long.yaml"
    long_prompt = " ".join(["a red star"] * 40)
    exp.write_text(
        f"steps:\n  - invert: {{prompts: ['{long_prompt}'], seeds: 0, settings: {{steps: 1, size: 32, copies: 1}}}}\n"
    )
    result = invoke("-o", tmp_path / "o", "--device", "cpu", "run", exp)
    assert result.exit_code == 2, result.output
    assert (
        "longer than the model's 14-token context" in result.stderr
        and "--truncate" not in result.stderr.split("tokens;")[0]
    )
    assert not (tmp_path / "o" / "runs").exists()


def _shards(invoke, tmp_path, experiment):
    for i in (0, 1):
        r = invoke("-o", tmp_path, "--device", "cpu", "run", experiment, "--shard", f"{i}/2")
        assert r.exit_code == 0, r.output
    return tmp_path / "runs" / "rel.shard-0-of-2", tmp_path / "runs" / "rel.shard-1-of-2"


@pytest.mark.slow
def test_merge_with_a_missing_shard_exits_non_zero(invoke, tmp_path, experiment):
    s0, s1 = _shards(invoke, tmp_path, experiment)
    partial = invoke("merge", s0, "-o", tmp_path / "partial")
    assert partial.exit_code == 1, partial.output
    assert "missing shards: 1 of 2 (their items are pending: run the experiment with --shard 1/2" in partial.stderr
    twice = invoke("merge", s0, s0, "-o", tmp_path / "twice")
    assert twice.exit_code == 2 and "more than once" in twice.stderr
    assert not (tmp_path / "twice").exists()
    whole = invoke("merge", s0, s1, "-o", tmp_path / "whole")
    assert whole.exit_code == 0, whole.output


def test_bad_value_in_a_config_section_names_file_and_line(invoke, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: shapes-tiny\ninvert:\n  steps: three\n")
    result = invoke("-c", cfg, "invert", "a star")
    assert result.exit_code == 2
    assert f"{cfg}:3: invert.steps:" in result.stderr and "three" in result.stderr  # the line of the key


@pytest.mark.parametrize("spec", ["hf-hub:", "local-dir:"])
def test_empty_hub_or_folder_spec_says_what_is_missing(invoke, spec):
    result = invoke("-m", spec, "neighbours", "star")
    assert result.exit_code == 1 and "nothing after" in result.stderr and "not cached" not in result.stderr


@pytest.mark.slow
def test_a_closed_standard_output_is_one_line_not_a_traceback(tmp_path):
    """`probe ... >&-`: nothing can be printed; say so in one line on stderr, exit 2."""
    import subprocess
    import sys
    from pathlib import Path

    probe = Path(sys.executable).with_name("probe")
    done = subprocess.run(
        ["bash", "-c", f"'{probe}' neighbours star --k 2 >&-"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr == "Error: standard output is closed (redirect it to a file or /dev/null instead)\n"


@pytest.mark.slow
def test_an_ascii_only_terminal_gets_escapes_not_an_internal_error(tmp_path):
    """A prompt with a star sign on a terminal whose encoding is ASCII: the table is printed with the
    character escaped, exit 0."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    probe = Path(sys.executable).with_name("probe")
    done = subprocess.run(
        [str(probe), "neighbours", "a red \u2606 star", "--k", "2"],
        cwd=tmp_path,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
    )
    assert done.returncode == 0, done.stderr.decode("ascii", "replace")
    assert b"a red \\u2606 star" in done.stdout and b"internal error" not in done.stderr
