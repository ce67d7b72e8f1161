import torch

from probe.world.vocab import PALETTE
from probe_invert.settings import load_preset
from probe_invert.validation import colour_shape_prompts, dominant_colours, validate


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
    result = validate(tiny_session, load_preset("default", steps=2, copies=1, size=16), [0], prompts=table,
                      checker_path=tmp_path / "missing.safetensors")
    assert result.n_images == 2 and result.shape_match is None and "missing" in result.checker
    assert 0 <= result.colour_match <= 1 and len(result.labels) == 2
    assert set(result.as_dict()["per_group"]["colour"]) >= {"red", "blue"}
