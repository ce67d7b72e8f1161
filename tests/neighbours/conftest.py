"""Fixtures for the neighbours tests: small word lists and a second tiny model (for 'model changed')."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

WORDS = ["red", "green", "blue", "circle", "square", "star", "naked", "sunset", "ocean", "dog", "cat", "house",
         "a red star", "a blue circle", "mountain", "river", "tree", "car", "bicycle", "piano"]


@pytest.fixture
def word_file(tmp_path) -> Path:
    path = tmp_path / "words.txt"
    path.write_text("# my words\n\n" + "\n".join(WORDS) + "\nred\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def other_tiny_spec(tmp_path_factory) -> str:
    """Same architecture as tiny_spec, different weights: a different model fingerprint."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    from tests.conftest import TINY_CFG

    folder = tmp_path_factory.mktemp("tiny-clip-2")
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": {}}))
    torch.manual_seed(2)
    model = open_clip.CLIP(**TINY_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return f"local-dir:{folder}"
