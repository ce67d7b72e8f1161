"""`probe invert` through the real app (in-process) on the tiny random CLIP."""

import json
import os
import signal
from pathlib import Path

import pytest
from PIL import Image

FAST = ["--steps", "3", "--copies", "2", "--size", "16"]


def run(invoke, tiny_spec, out, *args):
    return invoke("--model", tiny_spec, "--device", "cpu", "--out", out, "invert", *args)


def test_writes_png_sidecar_sheet_and_json(invoke, tiny_spec, tmp_path):
    r = run(invoke, tiny_spec, tmp_path, "a red circle", "a star | red:-0.5", "--seeds", "0-1", *FAST, "--json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert [(i["prompt"], i["seed"]) for i in report["images"]] == [
        ("a red circle", 0),
        ("a red circle", 1),
        ("a star | red:-0.5", 0),
        ("a star | red:-0.5", 1),
    ]
    first = report["images"][0]
    sidecar = json.loads(Path(first["sidecar"]).read_text())
    for key in (
        "prompt",
        "seed",
        "model",
        "fingerprint",
        "preset",
        "settings",
        "cosine",
        "seconds",
        "version",
        "status",
    ):
        assert key in sidecar
    assert sidecar["settings"]["steps"] == 3 and sidecar["status"] == "done" and sidecar["preset"] == "default"
    with Image.open(first["png"]) as im:
        assert (
            im.size == (32, 32) and im.info["prompt"] == "a red circle"
        )  # 16 doubled within the 3 steps and json.loads(im.text["seed"]) == 0
    assert os.path.isfile(report["contact_sheet"])
    assert str(tmp_path.resolve()) in os.path.realpath(first["png"])


def test_same_seed_same_png_bytes(invoke, tiny_spec, tmp_path):
    paths = []
    for sub in ("a", "b"):
        r = run(invoke, tiny_spec, tmp_path / sub, "a cat", "--seeds", "2", *FAST, "--json")
        assert r.exit_code == 0, r.stderr
        paths.append(json.loads(r.stdout)["images"][0]["png"])
    assert Path(paths[0]).read_bytes() == Path(paths[1]).read_bytes()


@pytest.mark.slow
def test_rerun_skips_finished_and_force_redoes(invoke, tiny_spec, tmp_path):
    assert run(invoke, tiny_spec, tmp_path, "a cat", *FAST).exit_code == 0
    r = run(invoke, tiny_spec, tmp_path, "a cat", "a dog", *FAST, "--json")
    rows = json.loads(r.stdout)["images"]
    assert [row["skipped"] for row in rows] == [True, False]
    r = run(
        invoke, tiny_spec, tmp_path, "a cat", *FAST, "--steps", "4", "--json"
    )  # other settings: refused, not replaced
    assert r.exit_code == 2 and "other settings" in r.stderr and "--force" in r.stderr
    r = run(invoke, tiny_spec, tmp_path, "a cat", *FAST, "--steps", "4", "--force", "--json")
    assert json.loads(r.stdout)["images"][0]["skipped"] is False


def test_snapshots_and_gif(invoke, tiny_spec, tmp_path):
    r = run(invoke, tiny_spec, tmp_path, "a cat", *FAST, "--set", "snapshot_every=1", "--gif", "--json")
    assert r.exit_code == 0, r.stderr
    png = json.loads(r.stdout)["images"][0]["png"]
    assert os.path.isfile(png.replace(".png", ".gif"))
    assert len(os.listdir(png.replace(".png", "-snapshots"))) == 3


@pytest.mark.slow
def test_gif_paths_are_printed_and_exist(invoke, tiny_spec, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = run(invoke, tiny_spec, "out", "a cat", "a dog", *FAST, "--gif")
    assert r.exit_code == 0, r.stderr
    gifs = [line.removeprefix("gif: ") for line in r.stderr.splitlines() if line.startswith("gif: ")]
    assert gifs == ["out/invert/a-cat/seed-0.gif", "out/invert/a-dog/seed-0.gif"]
    for gif in gifs:
        with Image.open(gif) as im:
            assert im.format == "GIF" and getattr(im, "n_frames", 1) >= 2
    again = run(invoke, tiny_spec, "out", "a cat", *FAST, "--gif", "--json")  # skipped: its GIF is still listed
    assert json.loads(again.stdout)["images"][0]["gif"].endswith("a-cat/seed-0.gif")
    plain = run(invoke, tiny_spec, "other", "a cat", *FAST)
    assert "gif" not in plain.stderr.lower()


def _tile_row(sheet, image, x: int) -> int | None:
    """The top edge of the 128-pixel tile at column x that shows `image` (resized), or None."""
    from PIL import ImageChops

    want = image.convert("RGB").resize((128, 128))
    for y in range(sheet.height - 127):
        if not ImageChops.difference(sheet.crop((x, y, x + 128, y + 128)), want).getbbox():
            return y
    return None


def test_contact_sheet_is_a_prompt_by_seed_grid_of_every_finished_image(invoke, tiny_spec, tmp_path):
    from probe.files.sheets import GRID_LABEL_WIDTH

    assert run(invoke, tiny_spec, tmp_path, "a star", "--seeds", "0", *FAST).exit_code == 0
    # the rerun adds a prompt and a seed and skips the finished image: the sheet still shows all four
    r = run(invoke, tiny_spec, tmp_path, "a star", "a red circle left of a blue square", "--seeds", "0-1", *FAST)
    assert r.exit_code == 0 and "1 of 4 images already finished" in r.stderr
    folder = tmp_path / "invert"
    with Image.open(folder / "contact-sheet.png") as opened:
        sheet = opened.convert("RGB")
    assert sheet.width == GRID_LABEL_WIDTH + 2 * 128  # one column per seed after the prompt band
    rows = {"a red circle left of a blue square": "a-red-circle-left-of-a-blue-square", "a star": "a-star"}
    tops = {}
    for prompt, name in rows.items():
        for seed in (0, 1):
            with Image.open(folder / name / f"seed-{seed}.png") as image:
                tops[prompt, seed] = _tile_row(sheet, image, GRID_LABEL_WIDTH + seed * 128)
    assert None not in tops.values(), tops
    top = {key: y for key, y in tops.items() if y is not None}
    circle, star = top["a red circle left of a blue square", 0], top["a star", 0]
    assert top["a star", 1] == star and top["a red circle left of a blue square", 1] == circle  # one row a prompt
    assert 0 < circle < star and sheet.height >= star + 128

    def inked(box) -> bool:  # anything but white: text was drawn there
        return sheet.crop(box).getextrema() != ((255, 255), (255, 255), (255, 255))

    assert inked((GRID_LABEL_WIDTH, 0, GRID_LABEL_WIDTH + 128, circle))  # "seed 0" above the first column
    assert inked((GRID_LABEL_WIDTH + 128, 0, sheet.width, circle))  # "seed 1"
    assert inked((0, circle, GRID_LABEL_WIDTH, circle + 128))  # the prompt left of its row
    assert inked((0, star, GRID_LABEL_WIDTH, star + 128))
    assert not inked((0, 0, GRID_LABEL_WIDTH, circle))  # the corner stays blank


def test_unsafe_prompt_stays_inside_the_output_folder(invoke, tiny_spec, tmp_path):
    r = run(invoke, tiny_spec, tmp_path, "../../etc/passwd", *FAST, "--json")
    assert r.exit_code == 0, r.stderr
    png = json.loads(r.stdout)["images"][0]["png"]
    assert os.path.realpath(png).startswith(str(tmp_path.resolve()))


def test_bad_input_is_a_one_line_usage_error(invoke, tiny_spec, tmp_path, runner):
    cases = [
        (["a cat:"], "missing weight"),
        (["a cat", "--seeds", "3-1"], "empty seed range '3-1'"),
        (["a cat", "--preset", "nope"], "unknown preset 'nope'"),
        ([], "no prompts given"),
        (["a cat", "--set", "param=wavelet"], "bad --set: param: unknown param 'wavelet'"),
        (["a cat", "--set", "resize_at=x"], "bad --set: resize_at: Input should be a valid number"),
        (
            ["a cat", "--set", "transforms.affine.p=2"],
            "bad --set: transforms.affine.p: Input should be less than or equal to 1",
        ),
        (["a cat", "--set", "lr"], "bad --set 'lr'"),
    ]
    for args, words in cases:
        r = run(invoke, tiny_spec, tmp_path, *args)
        assert r.exit_code == 2, (args, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr
    assert run(invoke, tiny_spec, tmp_path, "--prompts", tmp_path / "missing.txt").exit_code == 2


@pytest.mark.slow
def test_ctrl_c_saves_partial_images_and_rerun_finishes(invoke, tiny_spec, tmp_path, monkeypatch):
    from probe_invert import render

    real = render.invert_items

    def interrupting(session, items, settings, *, on_step=None, should_stop=None, **kw):
        def step(s, c):
            on_step(s, c)
            if s == 1:
                os.kill(os.getpid(), signal.SIGINT)

        return real(session, items, settings, on_step=step, should_stop=should_stop, **kw)

    monkeypatch.setattr(render, "invert_items", interrupting)
    r = run(invoke, tiny_spec, tmp_path, "a cat", "a dog", *FAST, "--batch-size", "1", "--json")
    assert r.exit_code == 130, r.stderr
    rows = json.loads(r.stdout)["images"]
    assert [row["status"] for row in rows] == ["interrupted", "interrupted"]
    assert rows[0]["png"] and rows[1]["png"] is None and "Interrupted" in r.stderr
    monkeypatch.setattr(render, "invert_items", real)
    r = run(invoke, tiny_spec, tmp_path, "a cat", "a dog", *FAST, "--batch-size", "1", "--json")
    assert r.exit_code == 0 and [row["status"] for row in json.loads(r.stdout)["images"]] == ["done", "done"]


@pytest.mark.slow
def test_validate_command_runs_all_48_prompts(invoke, tiny_spec, tmp_path):
    r = invoke(
        "--model",
        tiny_spec,
        "--device",
        "cpu",
        "--out",
        tmp_path,
        "invert-validate",
        "--seeds",
        "0",
        "--steps",
        "1",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["n_images"] == 48
    hits = [f == e for f, e in zip(report["found_colour"], report["expected_colour"], strict=True)]
    assert report["colour_match"] == sum(hits) / 48 == pytest.approx(sum(report["per_group"]["colour"].values()) / 8)
    assert os.path.isfile(tmp_path / "invert-validate" / "default-seeds-0" / "contact-sheet.png")
    again = invoke("--model", tiny_spec, "--out", tmp_path, "invert-validate", "--seeds", "1", "--steps", "1", "--json")
    assert again.exit_code == 0, again.stderr  # other seeds: a folder of their own, the first run's files kept
    assert os.path.isfile(tmp_path / "invert-validate" / "default-seeds-1" / "validation.json")
    assert os.path.isfile(tmp_path / "invert-validate" / "default-seeds-0" / "validation.json")


@pytest.mark.slow
def test_default_preset_writes_full_resolution_images_on_a_224_pixel_model(invoke, tmp_path):
    import open_clip
    import torch
    from safetensors.torch import save_file

    from tests.conftest import TINY_CFG

    cfg = {**TINY_CFG, "vision_cfg": {**TINY_CFG["vision_cfg"], "image_size": 224}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    torch.manual_seed(0)
    state = open_clip.CLIP(**cfg).state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_path / "open_clip_model.safetensors"))
    r = run(
        invoke, f"local-dir:{tmp_path}", tmp_path / "out", "a red circle", "--steps", "61", "--copies", "1", "--json"
    )
    assert r.exit_code == 0, r.stderr
    with Image.open(json.loads(r.stdout)["images"][0]["png"]) as im:
        assert im.size == (224, 224)


def test_help_fits_one_screen_with_defaults_shown(invoke):
    r = invoke("invert", "--help")
    assert r.exit_code == 0
    options = [line for line in r.stdout.splitlines() if line.lstrip().startswith("-")]
    assert len(options) <= 16, options
    assert len(r.stdout.splitlines()) <= 40
    for flag, default in (("--steps", "90"), ("--copies", "4"), ("--batch-size", "32"), ("--preset", "default")):
        (line,) = [i for i, text in enumerate(r.stdout.splitlines()) if text.lstrip().startswith(flag + " ")]
        assert f"default: {default}" in " ".join(" ".join(r.stdout.splitlines()[line : line + 3]).split()), flag
    assert "--set KEY=VALUE" in r.stdout


def _mostly(colour: int, png: Path) -> float:
    """Share of the clearly coloured pixels (not grey) whose strongest channel is `colour` (0 = red)."""
    import numpy as np

    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    coloured = (rgb.max(-1) - rgb.min(-1)) > 40
    assert coloured.mean() > 0.02, "the image is all grey"
    return float((rgb.argmax(-1)[coloured] == colour).mean())


def test_a_short_run_ends_at_the_model_input_and_shows_the_prompt(invoke, tmp_path):
    """`--steps 30` keeps the schedule's shape (doublings at 7, 13, 20 of 30), ends at the built-in
    model's 64 pixels, and "a red star" comes out mostly red among its coloured pixels."""
    r = invoke("--device", "cpu", "-o", tmp_path, "invert", "a red star", "--steps", "30", "--json")
    assert r.exit_code == 0, r.stderr
    row = json.loads(r.stdout)["images"][0]
    sidecar = json.loads(Path(row["sidecar"]).read_text())
    assert sidecar["sizes"] == [[0, 8], [7, 16], [13, 32], [20, 64]]
    assert Image.open(row["png"]).size == (64, 64)
    assert _mostly(0, Path(row["png"])) > 0.8


def test_set_values_reach_the_recorded_settings(invoke, tiny_spec, tmp_path):
    r = run(
        invoke,
        tiny_spec,
        tmp_path,
        "a cat",
        *FAST,
        "--set",
        "transforms.affine.degrees=20",
        "--set",
        "priors.tv=0.1",
        "--set",
        "lr=0.05",
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    settings = json.loads(Path(json.loads(r.stdout)["images"][0]["sidecar"]).read_text())["settings"]
    assert settings["lr"] == 0.05 and settings["priors"]["tv"] == {"weight": 0.1}
    assert settings["transforms"][1]["affine"]["degrees"] == 20.0
