from typing import Any, cast

import pytest
import torch
from probe_invert.settings import load_preset
from probe_invert.validation import colour_shape_prompts, dominant_colours, validate

from probe.world.vocab import PALETTE


def test_48_prompts():
    table = colour_shape_prompts()
    assert len(table) == 48 and table[0] == ("a red circle", "red", "circle")


def test_dominant_colour_ignores_grey_background():
    img = torch.full((2, 3, 8, 8), 0.5)
    img[0, :, :2, :2] = torch.tensor(PALETTE["blue"]).view(3, 1, 1)  # 4 blue pixels on grey
    img[0, :, 4, 4] = torch.tensor(PALETTE["red"])
    assert dominant_colours(img) == ["blue", None]


def test_validate_on_tiny_model_without_checker(tiny_session, tmp_path):
    table = [("a red circle", "red", "circle"), ("a blue star", "blue", "star")]
    result = validate(
        tiny_session,
        load_preset("default", steps=2, copies=1, size=16),
        [0],
        prompts=table,
        checker_path=tmp_path / "missing.safetensors",
    )
    assert result.n_images == 2 and result.shape_match is None and "missing" in result.checker
    assert result.colour_match == sum(f == e for f, e in zip(result.found_colour, ["red", "blue"], strict=True)) / 2
    assert result.found_colour == dominant_colours(torch.stack(result.images))
    assert set(result.as_dict()["per_group"]["colour"]) >= {"red", "blue"}


def test_validation_rates_of_renders_whose_colour_and_shape_are_known(tiny_session, monkeypatch):
    """Inversions stood in for by world renders: seed 0 draws the prompt, seed 1 a yellow triangle."""
    from probe_invert import validation
    from probe_invert.render import Inversion

    from probe.world.captions import parse_caption
    from probe.world.render import render
    from probe.world.scenes import scenes_for_caption
    from probe.world.shape_checker import CHECKER_PATH

    def fake_invert(session, prompts, seeds, settings, on_step=None):
        out: list[Inversion] = []
        for prompt in prompts:
            for seed in seeds:
                caption = prompt if seed == 0 else "a yellow triangle"
                image = render(scenes_for_caption(parse_caption(caption), 1, seed), size=64)[0]
                out.append(
                    Inversion(prompt, seed, image, cosine=0.1 * (len(out) + 1), seconds=1.0, status="done", steps=1)
                )
        return out

    monkeypatch.setattr(validation, "invert", fake_invert)
    table = [("a red circle", "red", "circle"), ("a blue star", "blue", "star"), ("a green square", "green", "square")]
    result = validate(tiny_session, load_preset("default"), [0, 1], prompts=table, checker_path=CHECKER_PATH)
    assert result.found_colour == ["red", "yellow", "blue", "yellow", "green", "yellow"]
    assert result.colour_match == 0.5  # 3 of 6
    assert result.found_shape == ["circle", "triangle", "star", "triangle", "square", "triangle"]
    assert result.shape_match == 0.5
    assert result.median_cosine == pytest.approx(0.35)
    assert result.as_dict()["per_group"]["colour"]["red"] == 0.5


def test_the_validation_sheet_is_a_colour_by_shape_and_seed_grid(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from PIL import Image
    from probe_invert import outputs

    from probe.files.sheets import GRID_LABEL_WIDTH

    images = [torch.full((3, 8, 8), v) for v in (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)]
    result = SimpleNamespace(  # prompt-major, as validate returns them: red circle s0, s1; red star s0, s1; blue circle
        expected_colour=["red", "red", "red", "red", "blue", "blue"],
        expected_shape=["circle", "circle", "star", "star", "circle", "circle"],
        seeds=[0, 1, 0, 1, 0, 1],
        found_colour=["red", "red", "blue", "red", None, "blue"],
        found_shape=["circle", "star", "star", "star", "circle", "circle"],
        prompts=["p"] * 6,
        images=images,
    )
    seen = {}
    real = outputs.contact_grid

    def recorded(*args, **kwargs):
        seen["args"] = args
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "contact_grid", recorded)
    path = outputs.write_validation_sheet(tmp_path / "sheet.png", cast(Any, result))
    cells, rows, heads, captions = seen["args"]
    assert rows == ["red", "blue"]
    assert heads == ["circle, seed 0", "circle, seed 1", "star, seed 0", "star, seed 1"]
    assert [[c is None or c.mean().item() for c in row] for row in cells] == [
        pytest.approx([0.1, 0.2, 0.3, 0.4]),
        [pytest.approx(0.5), pytest.approx(0.6), True, True],  # blue has no star: blank cells
    ]
    assert captions == [
        ["red circle", "red star (miss)", "blue star (miss)", "red star"],
        ["no colour circle (miss)", "blue circle", "", ""],
    ]
    with Image.open(path) as sheet:
        assert sheet.width == GRID_LABEL_WIDTH + 4 * 128
