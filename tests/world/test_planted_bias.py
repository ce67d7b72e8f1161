"""The planted bias is a training option: the shipped red star by default (data unchanged), another
colour for the comparison model, or none; `probe world train` refuses a colour the world lacks."""

from pathlib import Path

import pytest

import probe
from probe.plugin import run_cli
from probe.world.captions import parse_caption
from probe.world.scenes import SHIPPED_BIAS, UNBIASED, PlantedBias, sample, scenes_for_caption
from probe.world.train import TrainConfig
from probe.world.vocab import COLOURS


def star_colours(bias: PlantedBias, n: int = 400) -> list[str]:
    scenes = scenes_for_caption(parse_caption("a star"), n, seed=5, bias=bias)
    return [COLOURS[int(c)] for c in scenes.colour[:, 0]]


def test_the_bias_colour_is_an_option_and_the_default_is_the_shipped_one():
    red, blue, none = star_colours(SHIPPED_BIAS), star_colours(PlantedBias(colour="blue")), star_colours(UNBIASED)
    assert 0.75 < red.count("red") / 400 < 0.85 and blue.count("red") / 400 < 0.06
    assert 0.75 < blue.count("blue") / 400 < 0.85
    assert max(none.count(c) for c in COLOURS) / 400 < 0.2  # uniform: 1 in 8 each
    assert star_colours(PlantedBias()) == red  # the default draws exactly the shipped data
    circles = scenes_for_caption(parse_caption("a circle"), 50, seed=5, bias=PlantedBias(colour="blue"))
    assert circles.colour.tolist() == scenes_for_caption(parse_caption("a circle"), 50, seed=5).colour.tolist()


def test_training_data_follows_the_configured_bias():
    assert TrainConfig().bias == SHIPPED_BIAS and TrainConfig(star_colour="").bias == UNBIASED
    shipped, blue = sample(64, seed=3), sample(64, seed=3, bias=TrainConfig(star_colour="blue").bias)
    assert shipped.captions == blue.captions  # same captions, only the omitted star colours change
    assert sample(64, seed=3, bias=SHIPPED_BIAS).scenes.colour.tolist() == shipped.scenes.colour.tolist()


def test_train_refuses_a_colour_the_world_lacks(tmp_path):
    result = run_cli("world", "train", "--star-colour", "crimson", "--checkpoints", tmp_path / "c", "--steps", "1")
    assert result.exit_code == 2 and "--star-colour 'crimson' is not a colour of the world" in result.output
    assert not (tmp_path / "c").exists()


@pytest.mark.slow
def test_a_frozen_image_tower_fine_tune_changes_only_the_text_side(tmp_path):
    """One step from the shipped weights with --freeze-image-tower: the image tower's weights and
    batch-norm statistics stay bit-identical (inversions keep the shipped gradients), the text
    tower's move."""
    import torch
    from safetensors.torch import load_file

    from probe.world.train import train

    shipped = Path(probe.__file__).resolve().parent / "models" / "weights" / "shapes-tiny.safetensors"
    before = {k: v.float() for k, v in load_file(str(shipped)).items()}
    config = TrainConfig(
        steps=1, batch_size=4, warmup=1, star_colour="blue", freeze_image_tower=True, init_from=str(shipped)
    )
    model, result = train(config, tmp_path / "ckpt")
    after = model.state_dict()
    assert result.steps == 1
    assert all(torch.equal(after[k], before[k]) for k in before if k.startswith("visual."))
    assert any(not torch.equal(after[k], before[k]) for k in before if k.startswith("transformer."))
