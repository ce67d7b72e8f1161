"""Numerical invariants of what the probes hand out, whatever the session's precision.

Every embedding is unit-norm fp32 at every output (text, image, label prompts ensembled per
attribute); zero-shot probabilities are a softmax over the prompts, so an image's row does not
depend on the other images of its batch; ties count as the docs define them (a shuffled caption
within 1e-6 of the original is order-blind; P@1 is over the captions a perturbation applied to).
"""

from __future__ import annotations

import pytest
import torch

ONE = 1e-5  # |norm - 1| allowed: fp32 rounding of a normalised vector


def _unit(x: torch.Tensor) -> None:
    assert x.dtype == torch.float32
    assert torch.allclose(x.norm(dim=-1), torch.ones(x.shape[0]), atol=ONE), x.norm(dim=-1)


@pytest.fixture(scope="module")
def bf16_session(tiny_spec):
    from probe.session import Session

    return Session.open(tiny_spec, device="cpu", precision="bf16")


def _images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))


TEXTS = ["a red star", "a blue circle left of a green square", "x"]


@pytest.mark.parametrize("fast", [True, False])
def test_text_embeddings_are_unit_norm_fp32(tiny_session, fast):
    _unit(tiny_session.encode_text(TEXTS, fast=fast))


@pytest.mark.parametrize("fast", [True, False])
def test_image_embeddings_are_unit_norm_fp32(tiny_session, fast):
    _unit(tiny_session.encode_image(_images(), fast=fast))


def test_a_bf16_sessions_embeddings_are_fp32_and_unit_norm(bf16_session, tiny_session):
    """bf16 computes in bf16 but hands out fp32, close to the fp32 session's embeddings."""
    text, image = bf16_session.encode_text(TEXTS), bf16_session.encode_image(_images())
    _unit(text)
    _unit(image)
    assert (text * tiny_session.encode_text(TEXTS)).sum(-1).min() > 0.99
    assert (image * tiny_session.encode_image(_images())).sum(-1).min() > 0.99


def test_a_bf16_sessions_image_embeddings_keep_their_graph_in_fp32(bf16_session):
    """Inversion asks for gradients: the embeddings it optimises are fp32 too."""
    pixels = _images(2).requires_grad_(True)
    feats = bf16_session.encode_image(pixels, grad=True)
    _unit(feats.detach())
    feats.sum().backward()
    assert pixels.grad is not None and pixels.grad.dtype == torch.float32


def test_zero_shot_probabilities_are_a_softmax_over_the_prompts_per_image(tiny_session):
    from probe.scores import zero_shot

    prompts = ["a red star", "a blue circle", "a green square", "a dog"]
    images = _images(3)
    cos, probs = zero_shot(tiny_session, images, prompts)
    assert probs.shape == (3, 4)
    assert torch.allclose(probs.sum(dim=1), torch.ones(3), atol=1e-5)
    alone = torch.cat([zero_shot(tiny_session, images[i : i + 1], prompts)[1] for i in range(3)])
    assert torch.allclose(alone, probs, atol=1e-6)  # the batch's other images change nothing
    assert (probs.argmax(dim=1) == cos.argmax(dim=1)).all()


def test_ensembled_label_prompts_are_unit_norm_whatever_their_count(tiny_session):
    from probe_audit.labelling import attribute_embeddings
    from probe_audit.sets import LabelSet

    label_set = LabelSet(
        "t",
        "",
        {"red": ["a red star", "a red shape", "something red", "a red circle"], "blue": ["a blue star"]},
    )
    emb = attribute_embeddings(tiny_session, label_set)
    _unit(emb)
    red = tiny_session.encode_text(label_set.labels["red"]).mean(dim=0)
    assert torch.allclose(emb[0], red / red.norm(), atol=1e-6)


def test_ensembled_labels_match_the_renormalised_average(tiny_session):
    """The label an image gets is the attribute whose renormalised prompt average it is closest to."""
    from probe_audit.labelling import label_images
    from probe_audit.sets import LabelSet

    label_set = LabelSet(
        "t", "", {"a": ["a red star", "a blue dog", "a green car"], "b": ["a circle"], "c": ["x", "a square"]}
    )
    images = _images(6)
    got = label_images(tiny_session, images, label_set)
    img = tiny_session.encode_image(images)
    rows = []
    for prompts in label_set.labels.values():
        mean = tiny_session.encode_text(prompts).mean(dim=0)
        rows.append(mean / mean.norm())
    want = [label_set.attributes[i] for i in (img @ torch.stack(rows).T).argmax(dim=1).tolist()]
    assert got.labels == want
    for row in got.probs:
        assert abs(sum(row) - 1) < 1e-4


def _report(deltas: list[list[float]]):
    """A text-mode-like report with one perturbation: item i's originals score 1, its variants 1 + delta."""
    from probe_shuffle.order_scores import score_report

    captions = [f"c{i}" for i in range(len(deltas))]
    variants = [{"shuffle": [f"c{i} v{j}" for j in range(len(d))]} for i, d in enumerate(deltas)]
    texts = captions + [t for v in variants for t in v["shuffle"]]
    index = {t: i for i, t in enumerate(texts)}
    # anchors are unit vectors e0; a text's embedding is (score, 0, ...), so its score is exactly that number
    anchors = torch.zeros(len(captions), 2)
    anchors[:, 0] = 1
    text_emb = torch.zeros(len(texts), 2)
    text_emb[: len(captions), 0] = 1
    for i, d in enumerate(deltas):
        for j, delta in enumerate(d):
            text_emb[index[f"c{i} v{j}"], 0] = 1 + delta
    return score_report("text", anchors, text_emb, index, captions, variants, ["shuffle"], 0, 1)


def test_a_score_within_the_tolerance_is_a_tie_and_a_tie_is_order_blind():
    row = _report([[-5e-7], [-1e-3], [2e-7]]).rows[0]
    assert row.order_blindness == pytest.approx(2 / 3)  # the rounding-sized drop and the rise are blind
    assert row.precision_at_1 == pytest.approx(1 / 3)  # only the clear drop beats its original


def test_p_at_1_counts_only_the_captions_a_perturbation_applied_to():
    row = _report([[-0.1], [], [], [0.1]]).rows[0]
    assert row.n_items == 2
    assert row.precision_at_1 == pytest.approx(1 / 2)
    assert row.order_blindness == pytest.approx(1 / 2)
