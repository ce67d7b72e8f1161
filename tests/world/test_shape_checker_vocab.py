"""Shape checker plumbing (the trained weights are judged by `probe world train-checker`) and the vocabulary."""

from __future__ import annotations

import torch

from probe.world.shape_checker import ShapeChecker, messy_renders, predict_shapes
from probe.world.vocab import COLOURS, SHAPES, world_vocabulary


def test_messy_renders_are_seeded_and_labelled():
    images, labels = messy_renders(8, seed=1)
    again, _ = messy_renders(8, seed=1)
    assert images.shape == (8, 3, 64, 64) and torch.equal(images, again)
    assert labels.min() >= 0 and labels.max() < len(SHAPES)


def test_checker_takes_any_size():
    checker = ShapeChecker(width=4)
    assert checker(torch.rand(2, 3, 224, 224)).shape == (2, len(SHAPES))
    assert predict_shapes(checker, torch.rand(3, 3, 64, 64)).shape == (3,)


def test_vocabulary_holds_every_attribute_word():
    words = world_vocabulary()
    assert set(COLOURS) | set(SHAPES) <= set(words) and len(words) == len(set(words))
