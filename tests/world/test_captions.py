"""Captions: text <-> spec, hard negatives, and the truth matrix used as training targets."""

from __future__ import annotations

import random

import pytest

from probe.world.captions import (
    CaptionError,
    CaptionSpec,
    ObjectSpec,
    caption_codes,
    caption_text,
    hard_negative,
    match_matrix,
    parse_caption,
    swap_colours,
    swap_relation,
)
from probe.world.scenes import sample, scenes_for_caption


def test_parse_two_objects():
    spec = parse_caption("A red circle left of a blue square.")
    assert spec == CaptionSpec(ObjectSpec("circle", "red"), ObjectSpec("square", "blue"), "left of")
    assert caption_text(spec) == "a red circle left of a blue square"


def test_parse_single_attribute_forms():
    assert parse_caption("a shape on the left") == CaptionSpec(ObjectSpec(position="left"))
    assert parse_caption("a big star") == CaptionSpec(ObjectSpec("star", size="big"))
    assert parse_caption("an orange shape") == CaptionSpec(ObjectSpec(colour="orange"))
    assert parse_caption("a small white ring in the centre") == CaptionSpec(
        ObjectSpec("ring", "white", "small", "center")
    )


@pytest.mark.parametrize(
    "bad", ["", "a crimson circle", "a red", "a circle left of", "a red circle on the left above a star"]
)
def test_parse_errors_say_what_is_accepted(bad):
    with pytest.raises(CaptionError):
        parse_caption(bad)


def test_every_sampled_caption_round_trips_and_is_true_of_its_scene():
    data = sample(300, seed=11)
    assert [parse_caption(text) for text in data.captions] == data.specs
    truth = match_matrix(caption_codes(data.specs), data.scenes.codes())
    assert truth.diagonal().all()


def test_hard_negatives_are_false_of_their_scene():
    data = sample(300, seed=12)
    rng = random.Random(0)
    negatives = [hard_negative(spec, rng) for spec in data.specs]
    truth = match_matrix(caption_codes(negatives), data.scenes.codes())
    assert not truth.diagonal().any()


def test_swaps_and_relation_synonyms():
    spec = parse_caption("a red circle left of a green star")
    colours_swapped, relation_swapped = swap_colours(spec), swap_relation(spec)
    assert colours_swapped is not None and relation_swapped is not None
    assert caption_text(colours_swapped) == "a green circle left of a red star"
    assert caption_text(relation_swapped) == "a green star left of a red circle"
    scenes = scenes_for_caption(spec, 4, seed=0)
    same = caption_codes([parse_caption("a green star right of a red circle")])
    assert match_matrix(same, scenes.codes()).all()
    assert not match_matrix(caption_codes([relation_swapped, colours_swapped]), scenes.codes()).any()
    unordered = caption_codes([parse_caption("a green star and a red circle")])
    assert match_matrix(unordered, scenes.codes()).all()
