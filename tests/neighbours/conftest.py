"""Fixtures for the neighbours tests: small word lists and a second tiny model (for 'model changed')."""

from __future__ import annotations

from pathlib import Path

import pytest

WORDS = [
    "red",
    "green",
    "blue",
    "circle",
    "square",
    "star",
    "naked",
    "sunset",
    "ocean",
    "dog",
    "cat",
    "house",
    "a red star",
    "a blue circle",
    "mountain",
    "river",
    "tree",
    "car",
    "bicycle",
    "piano",
]


@pytest.fixture
def word_file(tmp_path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("# my words\n\n" + "\n".join(WORDS) + "\nred\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def other_tiny_spec(tmp_path_factory) -> str:
    """Same architecture as tiny_spec, different weights: a different model fingerprint."""
    from tests.conftest import write_tiny_model

    folder = write_tiny_model(tmp_path_factory.mktemp("tiny-clip-2"), seed=2)
    return f"local-dir:{folder}"
