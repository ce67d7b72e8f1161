"""The shipped model's swap scores, measured by shuffle-test, stay consistent with its model card.

The card's numbers come from `probe world evaluate` (its own scenes and seeds); here the same
comparisons run through `image_shuffle_test` on other seeded scenes, so agreement is checked within
a binomial tolerance (4 standard deviations of the difference of two independent proportions).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

import probe
from probe.cache import file_sha256
from probe_shuffle.scoring import image_shuffle_test
from probe_shuffle.sources import world_pairs

WEIGHTS_DIR = Path(probe.__file__).resolve().parent / "weights"
N_SCENES = 300
CHECKS = [  # (world relation, perturbation, card row label)
    ("left of", "swap-attributes", "true caption over colour-swapped caption"),
    ("left of", "swap-relation", "true caption over left/right-swapped caption"),
    ("above", "swap-relation", "true caption over above/below-swapped caption"),
]


def card_numbers(text: str) -> tuple[dict[str, float], int, str] | None:
    """(row label -> fraction, scenes per swap test, weights sha256 prefix) from a card's measured section."""
    values = {label: float(m.group(1)) / 100 for label in (c[2] for c in CHECKS)
              if (m := re.search(rf"\| {re.escape(label)} \| ([0-9.]+)% \|", text))}
    measured = re.search(r"Measured on (\d+) fresh held-out renders.*?sha256 `([0-9a-f]+)", text, re.S)
    if len(values) < len(CHECKS) or measured is None:
        return None
    return values, int(measured.group(1)) // 2, measured.group(2)  # evaluate uses n // 2 pair scenes


def test_card_parser_reads_what_world_evaluate_writes():
    from probe.world.card import numbers_section

    numbers = {"n_images": 1000, "colour": 1.0, "shape": 0.9, "position": 1.0, "size": 0.97, "colour_swap": 0.812,
               "left_right_swap": 0.733, "above_below_swap": 0.5, "bias_text_star_nearest": "red", "bias_text_star_red": 0.5,
               "bias_text_circle_nearest": "blue", "bias_text_circle_red": 0.1, "bias_star_red_gap": 0.1,
               "bias_circle_red_gap": 0.0, "bias_star_renders_red": 0.8, "bias_circle_renders_red": 0.1,
               "unseen_words_cosine": 0.9, "seen_words_cosine": 0.5}
    values, n, sha = card_numbers(numbers_section(numbers, {"seed": 1, "sha256": "ab12" * 16}))
    assert values == pytest.approx(dict(zip([c[2] for c in CHECKS], [0.812, 0.733, 0.5])), abs=1e-9)
    assert (n, sha) == (500, "ab12ab12ab12ab12")
    assert card_numbers("Not measured yet.") is None


@pytest.fixture(scope="module")
def shipped(builtin_session):
    if not (WEIGHTS_DIR / "shapes-tiny.safetensors").is_file():
        pytest.skip("shapes-tiny weights not trained yet")
    return builtin_session


def test_swap_precision_matches_the_model_card(shipped):
    parsed = card_numbers((WEIGHTS_DIR / "MODEL_CARD.md").read_text(encoding="utf-8"))
    if parsed is None:
        pytest.skip("the model card has no measured swap numbers yet")
    values, card_n, sha_prefix = parsed
    assert file_sha256(WEIGHTS_DIR / "shapes-tiny.safetensors").startswith(sha_prefix), "model card numbers are for other weights"
    for relation in dict.fromkeys(c[0] for c in CHECKS):
        pairs = world_pairs(N_SCENES, seed=0, relations=[relation])
        report = image_shuffle_test(shipped, pairs.images, pairs.captions, ["swap-attributes", "swap-relation"])
        for _, name, label in (c for c in CHECKS if c[0] == relation):
            expected, measured = values[label], report.row(name).precision_at_1
            p = min(max(expected, 0.05), 0.95)
            tolerance = 4 * math.sqrt(p * (1 - p) * (1 / N_SCENES + 1 / card_n))
            assert abs(measured - expected) <= tolerance, f"{relation} {name}: {measured:.3f} vs card {expected:.3f} ± {tolerance:.3f}"
