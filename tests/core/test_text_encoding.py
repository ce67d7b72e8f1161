from typing import Any

import open_clip
import pytest
import torch

from probe.text_encoding import find_text_tower

WORDS = ["cat", "a big red dog chasing a small cat", "", "supercalifragilistic", "a red circle left of a star"]


def test_fast_path_matches_stock_encode_text(tiny_session):
    assert tiny_session.fast_text
    fast = tiny_session.encode_text(WORDS * 3, batch_size=4)
    stock = tiny_session.encode_text(WORDS * 3, batch_size=4, fast=False)
    assert fast.shape == (15, 32)
    assert (fast - stock).abs().max().item() <= 1e-5


def test_fast_path_equals_open_clip_directly(tiny_session):
    tokens = tiny_session.tokenizer(WORDS)
    with torch.no_grad():
        ref = torch.nn.functional.normalize(tiny_session.model.encode_text(tokens), dim=-1)
    assert torch.allclose(tiny_session.encode_text(WORDS), ref, atol=1e-5)


def test_results_keep_input_order(tiny_session):
    a = tiny_session.encode_text(["dog", "a very long prompt about a dog and a cat"])
    b = tiny_session.encode_text(["a very long prompt about a dog and a cat", "dog"])
    assert torch.equal(a[0], b[1]) and torch.equal(a[1], b[0])


def test_non_causal_or_last_pooled_towers_use_stock_path():
    cfg: dict[str, Any] = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 16, "patch_size": 16, "head_width": 16},
        "text_cfg": {
            "context_length": 8,
            "vocab_size": 49408,
            "width": 16,
            "heads": 1,
            "layers": 1,
            "pool_type": "last",
        },
    }
    assert find_text_tower(open_clip.CLIP(**cfg)) is None
    cfg["text_cfg"]["pool_type"] = "argmax"
    assert find_text_tower(open_clip.CLIP(**cfg)) is not None
    assert find_text_tower(torch.nn.Linear(2, 2)) is None


def test_prompt_longer_than_context_is_an_error_unless_truncated(tiny_session):
    from probe.errors import UsageError

    long = " ".join(["word"] * 40)
    with pytest.raises(UsageError, match="longer than the model"):
        tiny_session.encode_text([long])
    with pytest.warns(UserWarning, match="truncated"):
        out = tiny_session.encode_text([long], truncate=True)
    assert out.shape == (1, 32)
