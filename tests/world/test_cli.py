"""`probe world train` refuses bad fine-tune input before any training starts; `probe world evaluate`
writes the card, with inversion and bias-audit results when given."""

from __future__ import annotations

import json

import pytest


def test_init_from_a_missing_file_is_a_one_line_usage_error(invoke, tmp_path):
    result = invoke(
        "world",
        "train",
        "--init-from",
        tmp_path / "nope.safetensors",
        "--checkpoints",
        tmp_path / "ck",
        "--output",
        tmp_path / "w.safetensors",
    )
    assert result.exit_code == 2
    assert "no such weights file" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ck").exists() and not (tmp_path / "w.safetensors").exists()


def test_bad_training_numbers_are_one_line_usage_errors(invoke, tmp_path):
    for flags in (["--adversarial-steps", "0"], ["--lr", "0"], ["--adversarial-from", "2"]):
        result = invoke(
            "world", "train", *flags, "--checkpoints", tmp_path / "ck", "--output", tmp_path / "w.safetensors"
        )
        assert result.exit_code == 2, flags
        assert "must be" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "ck").exists()


def bias_table(star_red: int, circle_red: int, n: int = 20) -> dict:
    """The part of a `probe bias` tables/bias.json that the card reads (colours labels, shapes prompts)."""
    from probe_audit.stats import wilson_interval

    def cell(k: int) -> dict:
        low, high = wilson_interval(k, n)
        return {"attribute": "red", "k": k, "n": n, "share": k / n, "low": low, "high": high, "variant": "neutral"}

    return {
        "data": {
            "label_set": "colours",
            "prompt_set": "shapes",
            "rows": [{"key": "star", "cells": [cell(star_red)]}, {"key": "circle", "cells": [cell(circle_red)]}],
        }
    }


@pytest.mark.slow
def test_evaluate_adds_inversions_and_the_bias_audit_to_the_card(invoke, tmp_path):
    validation = tmp_path / "validation.json"
    validation.write_text(
        json.dumps(
            {
                "colour_match": 0.885,
                "shape_match": 0.656,
                "n_images": 96,
                "median_cosine": 0.612,
                "settings": {"preset": "default"},
            }
        )
    )
    bias = tmp_path / "bias.json"
    bias.write_text(json.dumps(bias_table(18, 0)))
    card = tmp_path / "card.md"
    result = invoke(
        "-o", tmp_path, "world", "evaluate", "--n", "10", "--card", card, "--inversions", validation, "--bias", bias
    )
    assert result.exit_code == 0, result.output
    text = card.read_text()
    saved = json.loads(card.with_suffix(".json").read_text())  # the card's numbers, unrounded, beside it
    from probe.world.card import END, START, numbers_section

    section = text[text.index(START) : text.index(END) + len(END)]
    rendered = numbers_section(
        saved["numbers"], saved["meta"]
    )  # the JSON sorts keys: compare the lines, not their order
    assert (
        sorted(rendered.splitlines()) == sorted(section.splitlines()) and saved["numbers"]["inversion"]["images"] == 96
    )
    assert "'a star' inverted → labelled red: 90% [70–97] (18/20) (goal ≥ 70% ✓)" in text
    assert "'a circle' inverted → labelled red: 0% [0–16] (0/20) (goal ≤ 25% ✓)" in text
    assert (
        "Wilson 95% intervals separate" in text and "shape checker names the prompt's shape (goal ≥ 50%): 65.6%" in text
    )
    bias.write_text(json.dumps(bias_table(10, 8)))
    invoke("-o", tmp_path, "world", "evaluate", "--n", "10", "--card", card, "--bias", bias)
    assert "50% [30–70] (10/20) (goal ≥ 70% ✗)" in card.read_text() and "intervals overlap" in card.read_text()


def test_evaluate_refuses_a_table_that_is_not_the_shapes_colour_audit(invoke, tmp_path):
    bias = tmp_path / "bias.json"
    table = bias_table(18, 0)
    table["data"]["label_set"] = "gender"
    bias.write_text(json.dumps(table))
    card = tmp_path / "card.md"
    result = invoke("-o", tmp_path, "world", "evaluate", "--n", "10", "--card", card, "--bias", bias)
    assert result.exit_code == 2 and "colours label set" in result.output and not card.exists()
