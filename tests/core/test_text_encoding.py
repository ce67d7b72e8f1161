import sys
from typing import Any

import open_clip
import pytest
import torch

from probe.encoding.text import find_text_tower

WORDS = ["cat", "a big red dog chasing a small cat", "", "supercalifragilistic", "a red circle left of a star"]


# The parts a fake tower names by string (find_text_tower hands back what it found, whatever its type).
PARTS: tuple[Any, Any, Any, Any, Any, Any] = ("emb", "pos", "blocks", "ln", "proj", "mask")


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


def test_pooled_position_is_the_highest_token_or_the_first_end_token():
    from probe.encoding.text import pool_positions

    tokens = torch.tensor([[49406, 320, 49407, 0, 0], [49406, 7, 320, 7, 49407]])
    assert pool_positions(tokens, "argmax", None).tolist() == [2, 4]
    assert pool_positions(tokens, "eos", 7).tolist() == [0, 1]  # no 7 in the first row: position 0


def test_length_buckets_are_longest_first_and_stable():
    from probe.encoding.text import length_buckets

    tokens = torch.zeros(5, 8)
    buckets = length_buckets(tokens, torch.tensor([1, 5, 3, 5, 2]), 2)
    assert [b.tolist() for b in buckets] == [[1, 3], [2, 4], [0]]
    assert [b.tolist() for b in length_buckets(tokens, None, 2)] == [[0, 1], [2, 3], [4]]


def test_bucketed_features_are_normalised_and_in_input_order():
    from probe.encoding.text import encode_bucketed

    tokens = torch.tensor([[3.0, 4.0], [0.0, 2.0], [6.0, 8.0]])
    calls = []

    def encode_batch(idx):
        calls.append(idx.tolist())
        return tokens[idx].double()

    out = encode_bucketed(tokens, torch.tensor([0, 2, 1]), 2, encode_batch)
    assert calls == [[1, 2], [0]]
    assert out.dtype == torch.float32
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.0, 1.0], [0.6, 0.8]]))


def test_prompt_length_limit_leaves_room_for_start_and_end_tokens():
    from probe.encoding.text import check_prompt_lengths
    from probe.errors import UsageError

    def words(text):
        return text.split()

    check_prompt_lengths(words, 5, ["a b c"], truncate=False)  # 3 = 5 - 2 tokens: fits
    check_prompt_lengths(None, 5, ["a b c d e f"], truncate=False)  # no tokenizer to count with: nothing to check
    with pytest.raises(UsageError) as error:
        check_prompt_lengths(words, 5, ["a b", "a b c d", "a b c d e"], truncate=False)
    assert str(error.value) == (
        "2 prompt(s) longer than the model's 3-token context, e.g. 'a b c d' (shorten them to 3 tokens;"
        " commands with a --truncate option can cut them instead)"
    )
    long = " ".join(f"w{i}" for i in range(30))  # the example is its first 60 characters
    with pytest.raises(UsageError, match=f"e.g. {long[:60]!r} "):
        check_prompt_lengths(words, 5, [long], truncate=False)
    with pytest.warns(UserWarning) as warned:
        check_prompt_lengths(words, 5, ["a b c d"], truncate=True)
    assert [str(w.message) for w in warned] == ["1 prompt(s) truncated to 3 tokens"]


def tower_parts(**text):
    """The attributes find_text_tower reads, on a stand-in model."""
    parts = {
        "token_embedding": "emb",
        "positional_embedding": "pos",
        "transformer": "blocks",
        "ln_final": "ln",
        "text_projection": "proj",
        "attn_mask": "mask",
    }
    return {**parts, **text}


def test_a_separate_text_tower_is_found_only_when_truncation_is_exact():
    from types import SimpleNamespace

    from probe.encoding.text import TextTower

    def model(**text) -> Any:
        return SimpleNamespace(text=SimpleNamespace(**tower_parts(**text)))

    found = find_text_tower(model(pool_type="eos", eos_id=3, cls_emb=None, use_pad_mask=False))
    assert found == TextTower(*PARTS, "eos", 3)
    assert find_text_tower(model(pool_type="argmax")).pool_type == "argmax"
    assert find_text_tower(model(pool_type="eos", eos_id=3, cls_emb="cls")) is None  # a class token pools
    assert find_text_tower(model(pool_type="eos", eos_id=3, use_pad_mask=True)) is None  # padding is attended
    assert find_text_tower(model(pool_type="eos", eos_id=None)) is None
    assert find_text_tower(model(pool_type="eos", eos_id=3, attn_mask=None)) is None  # not causal
    bare: Any = SimpleNamespace(text=SimpleNamespace(pool_type="argmax"))
    assert find_text_tower(bare) is None
    unmasked: Any = SimpleNamespace(text=SimpleNamespace(pool_type="argmax", attn_mask="mask"))
    assert find_text_tower(unmasked) is None
    whole: Any = SimpleNamespace(**tower_parts(text_pool_type="eos", text_eos_id=5))
    assert find_text_tower(whole) == TextTower(*PARTS, "eos", 5)


def test_the_truncation_warning_names_the_callers_line(tiny_session):
    """Raised three calls deep inside the package, it still points at the line that asked to encode."""
    long = " ".join(["red"] * (tiny_session.context_length + 5))
    with pytest.warns(UserWarning, match="truncated") as warned:
        tiny_session.encode_text([long], truncate=True)  # this line
    assert [(w.filename, w.lineno) for w in warned] == [(__file__, sys._getframe().f_lineno - 1)]


def test_tokenizing_encodes_each_text_once_and_lays_ids_out_as_open_clip_does(tiny_session):
    """The length check and the ids share one BPE pass, and the ids equal the tokenizer's own call:
    start token, body, end token, zero padding; a cut prompt keeps its end token."""
    import open_clip

    from probe.encoding.text import tokenize_checked

    tokenizer = open_clip.get_tokenizer("ViT-B-16")
    texts = ["a red star", "", "Café — “quotes” &amp; ﬁsh", " ".join(["word"] * 75), " ".join(["word"] * 80)]
    calls: list[str] = []
    real = tokenizer.encode

    def counted(text: str) -> list[int]:
        calls.append(text)
        return real(text)

    tokenizer.encode = counted
    with pytest.warns(UserWarning, match="1 prompt"):
        got = tokenize_checked(tokenizer, 77, texts, truncate=True)
    assert calls == texts
    del tokenizer.encode
    assert torch.equal(got, tokenizer(texts))
    assert got[3, 76].item() == tokenizer.eot_token_id and got[4, 76].item() == tokenizer.eot_token_id


def test_tokenizers_with_their_own_layout_are_called_as_they_are():
    """A reduction strategy (open_clip's for over-long texts) or another tokenizer class decides its own
    ids: the one-pass layout is only for open_clip's plain BPE tokenizer."""
    import open_clip

    from probe.encoding.text import tokenize_checked

    reducing = open_clip.get_tokenizer("ViT-B-16")
    reducing.reduction_fn = lambda texts, context_length, **kw: torch.full((len(texts), context_length), 7)
    assert torch.equal(tokenize_checked(reducing, 77, ["a red star"], False), torch.full((1, 77), 7))

    class OtherTokenizer:  # encodes like BPE, lays ids out its own way
        context_length, sot_token_id, eot_token_id = 77, 1, 2

        def encode(self, text: str) -> list[int]:
            return [5] * len(text.split())

        def __call__(self, texts: list[str]) -> torch.Tensor:
            return torch.full((len(texts), 77), 9)

    assert torch.equal(tokenize_checked(OtherTokenizer(), 77, ["a red star"], False), torch.full((1, 77), 9))
