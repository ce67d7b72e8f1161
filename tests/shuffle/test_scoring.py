"""Scoring: exact metrics on hand-made embeddings; batched scoring equals the stock per-caption path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from probe_shuffle.order_scores import ALL_ROW, image_shuffle_test, text_shuffle_test
from probe_shuffle.perturbations import list_perturbations, perturb

from probe.errors import UsageError

CAPTIONS = ["a red circle left of a blue square", "a green star above a white ring"]
NAMES = ["swap-attributes", "swap-relation"]


class FakeEncoder:
    """Texts map to chosen unit vectors; images are passed through as their own embeddings."""

    def __init__(self, vectors: dict[str, torch.Tensor]) -> None:
        self.vectors = vectors
        self.text_calls = 0

    def encode_text(self, texts, batch_size=256, truncate=False):
        self.text_calls += 1
        return torch.stack([self.vectors[t] for t in texts])

    def encode_image(self, images):
        return images.flatten(1)

    def prepare(self, images):
        return images.unsqueeze(0) if images.dim() == 3 else images


def text_vector(score: float, slot: int) -> torch.Tensor:
    """A unit vector whose cosine with basis vector e_slot (the image) is `score`."""
    v = torch.zeros(4)
    v[slot], v[slot + 1] = score, math.sqrt(1 - score * score)
    return v


def test_image_metrics_are_exact_on_known_scores():
    variants = [perturb(c, NAMES) for c in CAPTIONS]
    wanted = [  # original, swap-attributes, swap-relation
        (0.5, 0.6, 0.4),
        (0.7, 0.2, 0.1),
    ]
    vectors = {}
    for i, (caption, per_type, scores) in enumerate(zip(CAPTIONS, variants, wanted, strict=True)):
        slot = 2 * i
        vectors[caption] = text_vector(scores[0], slot)
        vectors[per_type["swap-attributes"][0]] = text_vector(scores[1], slot)
        vectors[per_type["swap-relation"][0]] = text_vector(scores[2], slot)
    images = torch.eye(4)[[0, 2]].view(2, 1, 1, 4)  # flatten -> e0, e2
    encoder = FakeEncoder(vectors)
    report = image_shuffle_test(encoder, images, CAPTIONS, NAMES)
    assert encoder.text_calls == 1
    attr, rel, both = report.row("swap-attributes"), report.row("swap-relation"), report.row(ALL_ROW)
    assert (attr.n, attr.n_items, rel.n, both.n) == (2, 2, 2, 4)
    assert attr.mean_delta == pytest.approx(-0.2, abs=1e-6)
    assert attr.std_delta == pytest.approx(math.sqrt(0.3**2 * 2), abs=1e-6)  # sample std of [0.1, -0.5]
    assert attr.mean_score == pytest.approx(0.4, abs=1e-6)
    assert attr.order_blindness == pytest.approx(0.5)
    assert attr.precision_at_1 == pytest.approx(0.5)
    assert rel.mean_delta == pytest.approx(-0.35, abs=1e-6)
    assert rel.order_blindness == 0.0 and rel.precision_at_1 == 1.0
    assert both.order_blindness == pytest.approx(0.25) and both.precision_at_1 == pytest.approx(0.5)
    assert [item.original_score for item in report.items] == pytest.approx([0.5, 0.7], abs=1e-6)
    assert [v.delta for v in report.items[0].variants] == pytest.approx([0.1, -0.1], abs=1e-6)
    assert len(report.variant_rows()) == 4


def test_a_perturbation_that_never_applies_has_an_empty_row():
    encoder = FakeEncoder({"a red circle": F.normalize(torch.ones(4), dim=0)})
    report = text_shuffle_test(encoder, ["a red circle"], ["swap-relation"])
    row = report.row("swap-relation")
    assert (row.n, row.n_items, row.precision_at_1, row.mean_delta) == (0, 0, None, None)
    assert report.as_dict()["rows"][0]["name"] == "swap-relation"


def naive_text_scores(session, prompts, names):
    """The reference: stock padded encode_text, one caption at a time."""
    out = []
    for prompt in prompts:
        anchor = session.encode_text([prompt], fast=False)[0]
        for texts in perturb(prompt, names).values():
            out += [(anchor @ session.encode_text([text], fast=False)[0]).item() for text in texts]
    return out


def test_text_mode_matches_the_naive_loop(tiny_session):
    prompts = ["a red circle left of a blue square", "a big dog is chasing a small cat", "a red shape"]
    names = list_perturbations()
    report = text_shuffle_test(tiny_session, prompts, names)
    batched = [v.score for item in report.items for v in item.variants]
    assert batched == pytest.approx(naive_text_scores(tiny_session, prompts, names), abs=1e-5)
    assert [item.original_score for item in report.items] == pytest.approx([1.0] * 3, abs=1e-5)
    assert report.row("swap-relation").n_items == 2  # "a red shape" has no relation


def test_image_mode_matches_the_naive_loop_and_takes_any_size(tiny_session):
    torch.manual_seed(0)
    images = [torch.rand(3, 40, 40), torch.rand(3, 32, 32)]
    captions = ["a red circle left of a blue square", "a big dog is chasing a small cat"]
    report = image_shuffle_test(tiny_session, images, captions, NAMES, seed=3)
    for image, item in zip(images, report.items, strict=True):
        v = tiny_session.encode_image(image.unsqueeze(0))[0]
        assert item.original_score == pytest.approx(
            (v @ tiny_session.encode_text([item.caption], fast=False)[0]).item(), abs=1e-5
        )
        for variant in item.variants:
            naive = (v @ tiny_session.encode_text([variant.text], fast=False)[0]).item()
            assert variant.score == pytest.approx(naive, abs=1e-5)
            assert variant.delta == pytest.approx(naive - item.original_score, abs=1e-5)


def test_image_mode_needs_one_caption_per_image(tiny_session):
    with pytest.raises(UsageError, match="2 image"):
        image_shuffle_test(tiny_session, torch.rand(2, 3, 32, 32), ["a red circle"], NAMES)
    with pytest.raises(UsageError, match="no prompts"):
        text_shuffle_test(tiny_session, [], NAMES)
