"""Renderer: shapes, determinism and exact pixels on hand-built scenes."""

from __future__ import annotations

import torch

from probe.world.render import palette_tensor, render
from probe.world.scenes import Scenes, sample
from probe.world.vocab import COLOURS, SHAPES


def one_object(
    shape: str, colour: str = "red", centre: tuple[float, float] = (32.0, 32.0), radius: float = 10.0, grey: float = 0.5
) -> Scenes:
    return Scenes(
        shape=torch.tensor([[SHAPES.index(shape), -1]]),
        colour=torch.tensor([[COLOURS.index(colour), -1]]),
        size=torch.tensor([[1, -1]]),
        position=torch.tensor([[4, -1]]),
        centre=torch.tensor([[list(centre), [0.0, 0.0]]]),
        radius=torch.tensor([[radius, 0.0]]),
        background=torch.full((1, 3), grey),
    )


def coloured(image: torch.Tensor, colour: str) -> torch.Tensor:
    return (image == palette_tensor()[COLOURS.index(colour)].view(3, 1, 1)).all(0)


def test_square_covers_exactly_its_pixels():
    image = render(one_object("square"))[0]
    # half side 0.85 * 10 = 8.5 around 32: pixel centres 23.5 .. 40.5, i.e. columns/rows 23..40
    mask = coloured(image, "red")
    assert mask.sum().item() == 18 * 18
    assert mask[23:41, 23:41].all()
    assert torch.equal(image[:, 0, 0], torch.tensor([0.5, 0.5, 0.5]))


def test_ring_has_a_hole_and_star_points_up():
    ring = coloured(render(one_object("ring"))[0], "red")
    assert not ring[32, 32] and ring[32, 32 + 8]
    star = coloured(render(one_object("star"))[0], "red")
    assert star[32 - 9, 32]  # tip straight up (y down), 0.85 r away from the centre
    assert not star[32 + 9, 32]  # straight down is a valley at 0.5 r


def test_circle_area_is_close_to_pi_r_squared():
    mask = coloured(render(one_object("circle", radius=12.0))[0], "red")
    assert abs(mask.sum().item() - 3.14159 * 144) < 12


def test_shapes_differ_and_empty_slot_draws_nothing():
    masks = [coloured(render(one_object(s))[0], "red") for s in SHAPES]
    for i in range(len(SHAPES)):
        for j in range(i + 1, len(SHAPES)):
            assert not torch.equal(masks[i], masks[j]), (SHAPES[i], SHAPES[j])
    assert coloured(render(one_object("circle", colour="blue"))[0], "red").sum() == 0


def test_render_is_deterministic_and_sized():
    data = sample(16, seed=5)
    first, second = render(data.scenes), render(sample(16, seed=5).scenes)
    assert first.shape == (16, 3, 64, 64) and first.dtype == torch.float32
    assert torch.equal(first, second)
    assert first.min() >= 0 and first.max() <= 1
    assert render(data.scenes, size=128).shape == (16, 3, 128, 128)
