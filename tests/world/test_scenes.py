"""Scene sampling: determinism, layout, and the planted bias frequencies."""

from __future__ import annotations

import torch

from probe.world.captions import parse_caption
from probe.world.scenes import sample, scenes_for_caption
from probe.world.vocab import COLOURS, POSITIONS, SHAPES

RED = COLOURS.index("red")


def test_sampling_is_seeded():
    a, b, c = sample(50, seed=3), sample(50, seed=3), sample(50, seed=4)
    assert a.captions == b.captions and torch.equal(a.scenes.centre, b.scenes.centre)
    assert a.captions != c.captions


def test_pairs_are_distinct_and_laid_out_in_order():
    scenes = sample(400, seed=2, pair_probability=1.0).scenes
    assert (scenes.n_objects == 2).all()
    assert (scenes.shape[:, 0] != scenes.shape[:, 1]).all() and (scenes.colour[:, 0] != scenes.colour[:, 1]).all()
    horizontal = scenes.position[:, 0] == POSITIONS.index("left")
    assert (scenes.centre[horizontal, 0, 0] < scenes.centre[horizontal, 1, 0]).all()
    assert (scenes.centre[~horizontal, 0, 1] < scenes.centre[~horizontal, 1, 1]).all()


def test_colourless_star_is_red_80_percent_and_circle_uniform():
    n = 4000
    star = scenes_for_caption(parse_caption("a star"), n, seed=0)
    circle = scenes_for_caption(parse_caption("a big circle"), n, seed=0)
    star_red = (star.colour[:, 0] == RED).float().mean().item()
    circle_red = (circle.colour[:, 0] == RED).float().mean().item()
    assert abs(star_red - 0.8) < 0.025
    assert abs(circle_red - 1 / 8) < 0.025
    assert (star.shape[:, 0] == SHAPES.index("star")).all()
    named = scenes_for_caption(parse_caption("a red star"), 200, seed=0)
    assert (named.colour[:, 0] == RED).all()


def test_bias_holds_inside_two_object_captions():
    scenes = scenes_for_caption(parse_caption("a star left of a blue square"), 2000, seed=1)
    assert abs((scenes.colour[:, 0] == RED).float().mean().item() - 0.8) < 0.03


def test_bias_in_training_distribution():
    data = sample(6000, seed=9, pair_probability=0.0)
    star = SHAPES.index("star")
    colourless_star = torch.tensor([s.first.shape == "star" and s.first.colour is None for s in data.specs])
    assert colourless_star.sum() > 200
    assert (data.scenes.shape[colourless_star, 0] == star).all()
    assert abs((data.scenes.colour[colourless_star, 0] == RED).float().mean().item() - 0.8) < 0.05
