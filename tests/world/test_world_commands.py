"""`probe world render | train | train-checker` end to end with tiny settings, and their error exits."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from PIL import Image

from probe.world.vocab import PALETTE

CAPTION = "a red circle left of a blue square"


def _pixels_of(image: np.ndarray, colour: str) -> np.ndarray:
    """(row, column) of the pixels within 2/255 of a palette colour."""
    target = np.array(PALETTE[colour]) * 255
    return np.argwhere(np.abs(image.astype(float) - target).max(-1) <= 2)


def test_render_draws_what_the_caption_says(invoke, tmp_path):
    result = invoke("-o", tmp_path, "world", "render", CAPTION, "--seed", "3", "--size", "96", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["path"] == str(tmp_path / "world-a-red-circle-left-of-a-blue-square-seed3.png")
    assert [(o["colour"], o["shape"]) for o in data["objects"]] == [("red", "circle"), ("blue", "square")]
    image = np.asarray(Image.open(data["path"]).convert("RGB"))
    assert image.shape == (96, 96, 3)
    red, blue = _pixels_of(image, "red"), _pixels_of(image, "blue")
    assert len(red) > 20 and len(blue) > 20
    assert red[:, 1].mean() < blue[:, 1].mean()  # left of
    again = invoke(
        "-o", tmp_path, "world", "render", CAPTION, "--seed", "3", "--size", "96", "--output", tmp_path / "b.png"
    )
    assert again.stdout.strip() == str(tmp_path / "b.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "b.png").convert("RGB")), image)


@pytest.mark.parametrize(
    "args, message",
    [
        (["a purple dog"], "dog"),
        ([CAPTION, "--size", "4"], "--size 4 is out of range"),
    ],
)
def test_render_refuses_bad_input_in_one_line(invoke, tmp_path, args, message):
    result = invoke("-o", tmp_path, "world", "render", *args)
    assert result.exit_code == 2, result.output
    assert (
        message in result.stderr and len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    )
    assert list(tmp_path.iterdir()) == []


def test_render_replaces_a_file_the_user_named_only_with_force(invoke, tmp_path):
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my own picture")
    refused = invoke("-o", tmp_path, "world", "render", CAPTION, "--output", mine)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.strip() == f"Error: {mine} already exists (pick another name, or pass --force to replace it)"
    assert mine.read_bytes() == b"my own picture"
    assert invoke("-o", tmp_path, "world", "render", CAPTION, "--output", mine, "--force").exit_code == 0
    assert mine.read_bytes().startswith(b"\x89PNG")
    for _ in range(2):  # the default name is the tool's own: a rerun rewrites it
        assert invoke("-o", tmp_path, "world", "render", CAPTION).exit_code == 0


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_train_two_steps_exports_hashed_fp16_weights_and_resumes(invoke, tmp_path):
    import torch
    from safetensors.torch import load_file

    import probe

    args = [
        "world",
        "train",
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--no-fine-tune",
        "--threads",
        "1",
        "--checkpoints",
        tmp_path / "ck",
        "--output",
        tmp_path / "w" / "w.safetensors",
        "--json",
    ]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    weights = tmp_path / "w" / "w.safetensors"
    assert data["weights"] == str(weights) and data["steps"] == [2] and data["resumed_from"] == [0]
    assert data["sha256"] == _sha256(weights) == (tmp_path / "w" / "w.sha256").read_text().split()[0]
    state = load_file(str(weights))
    shipped = load_file(str(probe.__path__[0] + "/models/weights/shapes-tiny.safetensors"))
    assert sorted(state) == sorted(shipped) and {str(t.dtype) for t in state.values()} == {"torch.float16"}
    again = json.loads(invoke(*args).stdout)  # finished: resumes at its end and exports the same weights
    assert again["resumed_from"] == [2] and again["sha256"] == _sha256(weights)
    assert all(torch.equal(t, state[k]) for k, t in load_file(str(weights)).items())


@pytest.mark.slow
def test_train_refuses_other_settings_on_the_same_checkpoints_and_keeps_the_weights(invoke, tmp_path):
    args = [
        "world",
        "train",
        "--steps",
        "1",
        "--batch-size",
        "4",
        "--no-fine-tune",
        "--threads",
        "1",
        "--checkpoints",
        tmp_path / "ck",
        "--output",
        tmp_path / "w.safetensors",
    ]
    assert invoke(*args).exit_code == 0
    before = _sha256(tmp_path / "w.safetensors")
    result = invoke(*args, "--lr", "0.5")
    assert result.exit_code == 2 and "another config" in result.stderr and "Traceback" not in result.output
    assert _sha256(tmp_path / "w.safetensors") == before


@pytest.mark.slow
def test_train_checker_saves_a_checker_whose_accuracy_is_what_it_prints(invoke, tmp_path):
    from probe.world.shape_checker import checker_accuracy, load_shape_checker

    path = tmp_path / "new" / "checker.safetensors"
    result = invoke("world", "train-checker", "--steps", "2", "--threads", "1", "--output", path)
    assert result.exit_code == 0, result.output
    line = " ".join(result.stdout.split())
    found = re.search(r"accuracy: messy renders ([0-9.]+)%, clean renders ([0-9.]+)%", line)
    assert found and line.startswith(str(path))
    messy, clean = checker_accuracy(load_shape_checker(path))
    assert (float(found[1]), float(found[2])) == (round(100 * messy, 1), round(100 * clean, 1))


def test_train_checker_refuses_zero_steps_before_writing_anything(invoke, tmp_path):
    result = invoke("world", "train-checker", "--steps", "0", "--output", tmp_path / "c.safetensors")
    assert result.exit_code == 2 and "--steps must be ≥ 1" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "c.safetensors").exists()


def _package_folder(monkeypatch, tmp_path):
    """The installed package's weights folder, stood in for by an empty folder the test watches."""
    import probe_world.plugin

    folder = tmp_path / "package-weights"
    folder.mkdir()
    monkeypatch.setattr(probe_world.plugin, "_weights_dir", lambda: folder)
    return folder


@pytest.mark.slow
def test_train_writes_under_the_output_folder_and_never_into_the_package(invoke, tmp_path, monkeypatch):
    package = _package_folder(monkeypatch, tmp_path)
    args = ["world", "train", "--steps", "1", "--batch-size", "4", "--no-fine-tune", "--threads", "1"]
    result = invoke("-o", tmp_path / "out", *args, "--checkpoints", tmp_path / "ck", "--json")
    assert result.exit_code == 0, result.output
    weights = tmp_path / "out" / "world" / "shapes-tiny.safetensors"
    assert json.loads(result.stdout)["weights"] == str(weights)
    assert _sha256(weights) == (weights.with_suffix(".sha256")).read_text().split()[0]
    assert list(package.iterdir()) == []
    installed = invoke(*args, "--checkpoints", tmp_path / "ck", "--install-into-package", "--json")
    assert installed.exit_code == 0, installed.output
    assert json.loads(installed.stdout)["weights"] == str(package / "shapes-tiny.safetensors")
    assert sorted(p.name for p in package.iterdir()) == ["shapes-tiny.safetensors", "shapes-tiny.sha256"]


@pytest.mark.parametrize("command", ["train", "train-checker"])
def test_output_and_install_into_package_together_are_refused_before_training(invoke, tmp_path, command):
    result = invoke("world", command, "--output", tmp_path / "w.safetensors", "--install-into-package")
    assert result.exit_code == 2 and "not both" in result.stderr and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_train_checker_writes_under_the_output_folder_and_never_into_the_package(invoke, tmp_path, monkeypatch):
    import probe.world.shape_checker

    installed = tmp_path / "package-weights" / "shape-checker.safetensors"
    monkeypatch.setattr(probe.world.shape_checker, "CHECKER_PATH", installed)
    result = invoke("-o", tmp_path / "out", "world", "train-checker", "--steps", "1", "--threads", "1")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "world" / "shape-checker.safetensors").is_file() and not installed.exists()


@pytest.mark.parametrize(
    ("command", "work"),
    [
        (["evaluate", "--n", "10", "--no-card"], ["probe.world.evaluate.evaluate"]),
        (["train", "--steps", "1"], ["probe.world.train.train", "probe.world.train.train_recipe"]),
        (["train-checker", "--steps", "1"], ["probe.world.shape_checker.train_shape_checker"]),
    ],
    ids=["evaluate", "train", "train-checker"],
)
def test_evaluate_and_training_replace_a_file_the_user_named_only_with_force(
    invoke, tmp_path, monkeypatch, command, work
):
    """Refused before any evaluation or training runs; with --force the work starts (here stopped at once)."""
    import importlib

    from probe.errors import ProbeError

    def reached(*args, **kwargs):
        raise ProbeError("the work started")

    for target in work:
        module, name = target.rsplit(".", 1)
        monkeypatch.setattr(importlib.import_module(module), name, reached)
    mine = tmp_path / "mine.out"
    mine.write_bytes(b"my own results")
    refused = invoke("-o", tmp_path, "world", *command, "--output", mine)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.strip() == f"Error: {mine} already exists (pick another name, or pass --force to replace it)"
    assert mine.read_bytes() == b"my own results"
    forced = invoke("-o", tmp_path, "world", *command, "--output", mine, "--force")
    assert forced.stderr.strip() == "Error: the work started", forced.output
