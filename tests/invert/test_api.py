"""`probe.invert(...)` takes parts as data or as objects, as lucent's `render_vis` does."""

from typing import Any

import torch
from probe_invert.api import invert
from probe_invert.objectives import TotalVariation
from probe_invert.param import PixelParam
from probe_invert.transforms import Jitter, Resize

FAST: dict[str, Any] = {"steps": 3, "copies": 2, "size": 16, "resize_at": []}


class Counting:
    """A transform object that counts the copies it sees and passes them on unchanged."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, views, rng):
        self.seen += views.shape[0]
        return views


def test_part_objects_are_used_as_given(tiny_session):
    counting = Counting()
    grey = []

    def flat_grey(rng, size):
        grey.append(size)
        return PixelParam(torch.full((len(rng), 3, size, size), 0.5))

    def brightness(ctx):  # a prior object: rewards bright images
        return -ctx.images.mean(dim=(1, 2, 3))

    found = invert(
        tiny_session,
        ["a red star", "a blue circle"],
        seeds=[0],
        transforms=[counting, {"jitter": {"pixels": 1}}, Resize(tiny_session.image_size)],
        param=flat_grey,
        priors={"bright": brightness},
        lr=1e-9,
        **FAST,
    )
    assert counting.seen == 3 * 2 * 2  # every step, every copy of both images
    assert grey == [16]  # the initialiser made the images, at the start size
    for inv in found:
        assert torch.allclose(inv.image, torch.full_like(inv.image, 0.5), atol=1e-4)  # lr ~0: still the grey start
    recorded = found.settings
    assert list(recorded["transforms"][0]) == ["<Counting>"] and recorded["transforms"][1] == {"jitter": {"pixels": 1}}
    assert recorded["priors"] == {"bright": {"weight": 1.0, "object": repr(brightness)}}


def test_data_and_objects_give_the_same_image(tiny_session):
    """Parts given as objects make the same image as the same parts named with their options."""
    size = tiny_session.image_size
    as_data = invert(
        tiny_session, "a star", [0], transforms=[{"jitter": {"pixels": 2}}, "resize"], priors={"tv": 0.03}, **FAST
    )
    as_objects = invert(
        tiny_session, "a star", [0], transforms=[Jitter(2), Resize(size)], priors=[0.03 * TotalVariation()], **FAST
    )
    other = invert(
        tiny_session, "a star", [0], transforms=[Jitter(3), Resize(size)], priors=[0.03 * TotalVariation()], **FAST
    )
    assert torch.equal(as_data[0].image, as_objects[0].image)
    assert not torch.equal(as_objects[0].image, other[0].image)  # the objects' own options count
