"""The shipped model card agrees with the evaluation behind it, and shuffle-test agrees with both.

`probe world evaluate` writes the card's numbers section and, beside the card, the same numbers
unrounded (MODEL_CARD.json). Here the card must be exactly what those numbers render to, for the
shipped weights; and the swap comparisons rerun through `image_shuffle_test` on other seeded scenes
must agree with the JSON within 3 standard deviations of the difference of two proportions, from
both sample sizes (a 0.3% chance per comparison of failing when the model is unchanged; the scenes
are seeded, so a pass or a failure repeats).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from probe_shuffle.order_scores import image_shuffle_test
from probe_shuffle.sources import world_pairs

import probe
from probe.files.cache import file_sha256
from probe.world.card import END, START, numbers_section

WEIGHTS_DIR = Path(probe.__file__).resolve().parent / "models" / "weights"
CARD, NUMBERS = WEIGHTS_DIR / "MODEL_CARD.md", WEIGHTS_DIR / "MODEL_CARD.json"
N_SCENES = 300
CHECKS = [  # (world relation, perturbation, evaluation key)
    ("left of", "swap-attributes", "colour_swap"),
    ("left of", "swap-relation", "left_right_swap"),
    ("above", "swap-relation", "above_below_swap"),
]


@pytest.fixture(scope="module")
def evaluation() -> dict:
    return json.loads(NUMBERS.read_text(encoding="utf-8"))


def test_the_card_is_what_the_evaluation_renders_to_for_the_shipped_weights(evaluation):
    meta, numbers = evaluation["meta"], evaluation["numbers"]
    assert meta["model"] == "shapes-tiny" and meta["sha256"] == file_sha256(WEIGHTS_DIR / "shapes-tiny.safetensors")
    card = CARD.read_text(encoding="utf-8")
    section = card[card.index(START) : card.index(END) + len(END)]
    expected = numbers_section(numbers, meta)
    if "inversion" in numbers and "inversion_bias" in numbers:
        assert section == expected
    else:  # measured without --inversions / --bias: everything up to those paragraphs
        assert section.startswith(expected.removesuffix(END).rstrip())


def two_proportion_tolerance(a: float, n_a: int, b: float, n_b: int, sigmas: float = 3.0) -> float:
    """`sigmas` standard deviations of the difference of two independent proportions (pooled estimate)."""
    pooled = (a * n_a + b * n_b) / (n_a + n_b)
    return sigmas * math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))


def test_tolerance_shrinks_with_the_samples_and_at_the_extremes():
    assert two_proportion_tolerance(0.5, 300, 0.5, 500) == pytest.approx(3 * math.sqrt(0.25 * (1 / 300 + 1 / 500)))
    assert two_proportion_tolerance(1.0, 300, 1.0, 500) == 0.0
    assert two_proportion_tolerance(0.98, 300, 0.92, 500) < 0.98 - 0.92  # 98% measured against a card's 92% fails
    assert two_proportion_tolerance(0.92, 300, 0.98, 500) < 0.98 - 0.92  # and the other way round


@pytest.mark.slow
def test_swap_precision_matches_the_evaluation(builtin_session, evaluation):
    numbers = evaluation["numbers"]
    card_n = numbers["n_images"] // 2  # evaluate scores n // 2 two-object scenes per relation
    for relation in dict.fromkeys(c[0] for c in CHECKS):
        pairs = world_pairs(N_SCENES, seed=0, relations=[relation])
        report = image_shuffle_test(builtin_session, pairs.images, pairs.captions, ["swap-attributes", "swap-relation"])
        for _, name, key in (c for c in CHECKS if c[0] == relation):
            expected, measured = numbers[key], report.row(name).precision_at_1
            assert measured is not None  # None only for a perturbation that applied to no caption
            tolerance = two_proportion_tolerance(measured, N_SCENES, expected, card_n)
            assert abs(measured - expected) <= tolerance, (
                f"{relation} {name}: {measured:.3f} vs card {expected:.3f} ± {tolerance:.3f}"
            )
