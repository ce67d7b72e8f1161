"""Experiments on several models: models: in the file or -m twice, one model loaded at a time, one run
folder per model under one comparison folder, resume and shards per model, the compare hook."""

import gc
import json
import weakref
from pathlib import Path

import pytest
from probe_run.api import run_comparison
from probe_run.experiment import load_experiment

from probe.errors import ConfigError

FAST = "{steps: 1, size: 32, copies: 1}"
EXPERIMENT = f"""\
name: cmp
steps:
  - invert: {{name: shapes, prompts: [a star], seeds: 0-1, settings: {FAST}, batch: 1}}
  - neighbours: {{texts: [a star, a red circle], vocabs: [world], k: 3, batch: 1}}
  - shuffle: {{prompts: [a red star left of a blue circle], perturbations: [swap-attributes]}}
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "exp.yaml"
    path.write_text(text)
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under a comparison folder, byte for byte, except the timestamps of run manifests
    and the timings of item records."""
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        if path.name == "manifest.json" or "/items/" in f"/{rel}":
            record = json.loads(data)
            for key in ("created", "updated", "seconds"):
                record.pop(key, None)
            data = json.dumps(record, sort_keys=True).encode()
        out[rel] = data
    return out


class Sessions:
    """open_session / release_session over real sessions, as the CLI's state does."""

    def __init__(self) -> None:
        self.loaded: dict = {}
        self.opened: list[str] = []

    def open(self, spec):
        from probe.session import Session

        if spec not in self.loaded:
            self.opened.append(spec)
            self.loaded[spec] = Session.open(spec, device="cpu")
        return self.loaded[spec]

    def release(self, spec) -> None:
        self.loaded.pop(spec, None)


# ---------------------------------------------------------------- the experiment file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: shapes-tiny\n", "exp.yaml:1: models: models must be a non-empty list of model specs"),
        ("models: []\n", "exp.yaml:1: models: models must be a non-empty list"),
        ("model: shapes-tiny\nmodels: [shapes-tiny]\n", "exp.yaml:2: models: give model: (one model) or models:"),
        ("models:\n  - shapes-tiny\n  - 3\n", "exp.yaml:3: models[1]: each model must be a model spec string"),
        ("models:\n  - shapes-tiny\n  - shapes-tiny\n", "exp.yaml:3: models[1]: model 'shapes-tiny' is listed twice"),
        ("models:\n  - shapes-tiny\n  - shapes-tinyy\n", "exp.yaml:3: models[1]: unknown model architecture"),
    ],
)
def test_models_key_is_checked_with_file_and_line(tmp_path, text, message):
    path = write(tmp_path, text + "steps:\n  - neighbours: {texts: [a star], vocabs: [world], k: 3}\n")
    with pytest.raises(ConfigError) as caught:
        load_experiment(path)
    assert str(caught.value).startswith(f"{tmp_path / message}")


def test_a_one_model_experiment_keeps_its_spec_and_a_comparison_lists_its_models(tmp_path):
    steps = "steps:\n  - neighbours: {texts: [a star], vocabs: [world], k: 3}\n"
    one = load_experiment(write(tmp_path, "name: e\nmodel: shapes-tiny\n" + steps))
    assert sorted(one.spec) == ["format", "model", "name", "seed", "steps"] and one.models == []
    both = load_experiment(write(tmp_path, "name: e\nmodels: [shapes-tiny, ViT-B-32@random]\n" + steps))
    assert both.models == ["shapes-tiny", "ViT-B-32@random"]


# ---------------------------------------------------------------- the engine


@pytest.mark.slow
def test_interrupted_comparison_resumes_to_the_bytes_of_an_uninterrupted_one(tmp_path, other_builtin_spec):
    """Stopped after the first model's first chunk, resumed: every file equals an uninterrupted run."""
    path = write(tmp_path, EXPERIMENT)
    models = ["shapes-tiny", other_builtin_spec]
    sessions = Sessions()
    whole = run_comparison(
        path, sessions.open, models=models, release_session=sessions.release, run_dir=tmp_path / "whole", source="e"
    )
    assert whole.exit_code == 0 and list(whole.runs) == models and not whole.interrupted

    items = tmp_path / "cut" / "shapes-tiny" / "items"  # stop once the first chunk's records are written
    cut = run_comparison(
        path,
        sessions.open,
        models=models,
        release_session=sessions.release,
        run_dir=tmp_path / "cut",
        source="e",
        should_stop=items.exists,
    )
    assert cut.interrupted and list(cut.runs) == ["shapes-tiny"] and cut.runs["shapes-tiny"].counts["done"] == 1
    shown = sorted(p.name for p in (tmp_path / "cut").iterdir() if not p.name.startswith("."))
    assert shown == ["comparison.json", "shapes-tiny"]  # the second model waits for --resume
    resumed = run_comparison(
        path,
        sessions.open,
        models=models,
        release_session=sessions.release,
        run_dir=tmp_path / "cut",
        source="e",
        resume=True,
    )
    assert resumed.runs["shapes-tiny"].skipped == 1 and not resumed.interrupted
    assert snapshot(tmp_path / "cut") == snapshot(tmp_path / "whole")
    first, second = (
        json.loads((tmp_path / "whole" / f / "tables" / "neighbours.json").read_text())
        for f in [r.folder.name for r in whole.runs.values()]
    )
    assert first != second  # two real models: their neighbours' cosines differ


# ---------------------------------------------------------------- the command line


@pytest.mark.slow
def test_cli_runs_each_model_into_its_folder_with_one_model_loaded_at_a_time(
    tmp_path, invoke, other_builtin_spec, monkeypatch
):
    from probe.session import Session

    real_open = Session.open  # bound to the class
    alive: list[weakref.ref] = []
    live_at_load: list[int] = []

    def counting_open(cls, model="shapes-tiny", *args, **kwargs):
        gc.collect()
        live_at_load.append(sum(1 for ref in alive if ref() is not None))
        session = real_open(model, *args, **kwargs)
        alive.append(weakref.ref(session))
        return session

    monkeypatch.setattr(Session, "open", classmethod(counting_open))
    path = write(tmp_path, EXPERIMENT)
    result = invoke("-o", tmp_path / "out", "run", path, "-m", "shapes-tiny", "-m", other_builtin_spec, "--json")
    assert result.exit_code == 0, result.stderr
    assert live_at_load == [0, 0]  # the first model was freed before the second loaded
    data = json.loads(result.stdout)
    assert list(data["models"]) == ["shapes-tiny", other_builtin_spec]
    folder = tmp_path / "out" / "runs" / "cmp"
    manifest = json.loads((folder / "comparison.json").read_text())
    names = [m["folder"] for m in manifest["models"]]
    assert [m["model"] for m in manifest["models"]] == ["shapes-tiny", other_builtin_spec]
    assert names[0] == "shapes-tiny" and names[1].startswith("shapes-tiny-") and "/" not in names[1]
    for spec, name in zip([m["model"] for m in manifest["models"]], names, strict=True):
        run = json.loads((folder / name / "manifest.json").read_text())
        assert run["model"]["model"] == spec and run["experiment"]["model"] == spec
        assert data["models"][spec]["counts"] == {"done": 5, "failed": 0, "pending": 0}
    again = invoke("-o", tmp_path / "out", "run", path, "-m", "shapes-tiny", "-m", other_builtin_spec)
    assert again.exit_code == 2 and "already holds a run (pass --resume" in again.stderr
    resumed = invoke("-o", tmp_path / "out", "run", path, "-m", "shapes-tiny", "-m", other_builtin_spec, "--resume")
    assert resumed.exit_code == 0 and "0 computed now, 5 already finished" in resumed.stderr


@pytest.mark.slow
def test_models_in_the_file_and_m_picking_one_of_them_as_a_slurm_task_would(tmp_path, invoke, other_builtin_spec):
    path = write(tmp_path, f"models: [shapes-tiny, '{other_builtin_spec}']\n" + EXPERIMENT)
    out = tmp_path / "out"
    task = invoke("-o", out, "run", path, "-m", other_builtin_spec, "--shard", "1/2", "--json")
    assert task.exit_code == 0, task.stderr
    folder = out / "runs" / "cmp"
    names = [m["folder"] for m in json.loads((folder / "comparison.json").read_text())["models"]]
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "comparison.json",
        f"{names[1]}.shard-1-of-2",
    ]
    wrong = invoke("-o", out, "run", path, "-m", "ViT-B-32@random")
    assert wrong.exit_code == 2 and wrong.stderr.count("\n") == 1
    assert "model 'ViT-B-32@random' is not one of experiment 'cmp''s models" in wrong.stderr


def test_a_folder_of_another_comparison_or_a_one_model_run_is_refused_before_any_model_loads(tmp_path, invoke):
    path = write(tmp_path, EXPERIMENT)
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    held = invoke("run", path, "-m", "shapes-tiny", "-m", "ViT-B-32@random", "--run-dir", folder)
    assert held.exit_code == 2 and "holds a one-model run, not a comparison" in held.stderr
    (folder / "manifest.json").unlink()
    (folder / "comparison.json").write_text(json.dumps({"digest": "other", "models": []}))
    other = invoke("run", path, "-m", "shapes-tiny", "-m", "ViT-B-32@random", "--run-dir", folder)
    assert other.exit_code == 2 and "compares a different experiment" in other.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["comparison.json"]


def test_a_command_that_takes_one_model_refuses_two_in_one_line(invoke):
    result = invoke("invert", "a star", "-m", "shapes-tiny", "-m", "ViT-B-32@random")
    assert result.exit_code == 2 and result.stderr.count("\n") == 1
    assert "`probe invert` takes one model, but -m/--model was given 2 times" in result.stderr


@pytest.mark.slow
def test_a_comparison_run_ends_with_the_compare_page_and_still_resumes(tmp_path, invoke, other_builtin_spec):
    """The built-in `compare` API writes its page and tables into the comparison folder, beside (never
    over) comparison.json, so the folder stays a comparison that --resume accepts."""
    path = write(tmp_path, EXPERIMENT.replace("seeds: 0-1", "seeds: 0"))
    args = ("-o", tmp_path / "out", "run", path, "-m", "shapes-tiny", "-m", other_builtin_spec)
    result = invoke(*args)
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "out" / "runs" / "cmp"
    listing = json.loads((folder / "comparison.json").read_text())
    assert listing["format"] == "clip-probe-comparison/1"
    assert [m["model"] for m in listing["models"]] == ["shapes-tiny", other_builtin_spec]
    page = (folder / "compare.html").read_text()
    assert other_builtin_spec.split("@")[0] in page and "<table" in page
    compared = json.loads((folder / "compare.json").read_text())
    assert [r["model"] for r in compared["runs"]] == ["shapes-tiny", other_builtin_spec]
    assert (folder / "tables").is_dir() and any((folder / "tables").iterdir())
    assert f"comparison written to {folder}" in result.stderr
    resumed = invoke(*args, "--resume")
    assert resumed.exit_code == 0, resumed.stderr
    assert "0 computed now" in resumed.stderr
