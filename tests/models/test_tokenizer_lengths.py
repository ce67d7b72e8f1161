"""A prompt longer than the model's context is the same one-line error for every tokenizer kind,
never silently cut: open_clip's BPE, open_clip's Hugging Face wrapper (the special-token layouts of
SigLIP, SigLIP2, XLM-R and NLLB) and `hf-transformers:` tokenizers."""

from __future__ import annotations

import pytest
import torch

from tests.models import hfcache

pytest.importorskip("transformers")

CONTEXT = 16
LONG = " ".join(hfcache.WORDS[i % len(hfcache.WORDS)] for i in range(96))  # a 96-word prompt


def _open_clip_hf(folder):
    from open_clip.tokenizer import HFTokenizer

    return HFTokenizer(str(folder), context_length=CONTEXT)


def _hf_transformers(folder):
    from probe_hf.loader import TransformersTokenizer
    from transformers import AutoTokenizer

    return TransformersTokenizer(AutoTokenizer.from_pretrained(str(folder)), CONTEXT)


KINDS = [(wrap, family) for wrap in (_open_clip_hf, _hf_transformers) for family in hfcache.TEMPLATES]


@pytest.mark.parametrize(("wrap", "family"), KINDS, ids=[f"{w.__name__[1:]}-{f}" for w, f in KINDS])
def test_over_long_prompt_is_refused_and_a_full_one_is_kept_whole(wrap, family, tmp_path):
    from probe.encoding.text import tokenize_checked
    from probe.errors import UsageError

    hfcache.save_tokenizer(tmp_path, CONTEXT, hfcache.TEMPLATES[family])
    tokenizer = wrap(tmp_path)
    specials = len(hfcache.TEMPLATES[family].split()) - 1
    limit = CONTEXT - specials
    with pytest.raises(UsageError) as error:
        tokenize_checked(tokenizer, CONTEXT, ["a red star", LONG], truncate=False)
    assert str(error.value).startswith(f"1 prompt(s) longer than the model's {limit}-token context, e.g. 'a photo")
    full = " ".join(hfcache.WORDS[:limit])  # exactly fills the context: accepted, nothing cut
    ids = tokenize_checked(tokenizer, CONTEXT, [full], truncate=False)
    assert ids.shape == (1, CONTEXT)
    assert torch.equal(ids, tokenizer([full]))
    assert 1 not in ids[0].tolist()  # no padding: every position is a word or a special token
    with pytest.raises(UsageError):
        tokenize_checked(tokenizer, CONTEXT, [full + " dog"], truncate=False)  # one word more
    with pytest.warns(UserWarning, match=f"1 prompt\\(s\\) truncated to {limit} tokens"):
        tokenize_checked(tokenizer, CONTEXT, [LONG], truncate=True)


def test_open_clip_bpe_limit_is_unchanged():
    """The BPE tokenizer (CLIP-style towers) keeps its two special tokens' worth of room."""
    import open_clip

    from probe.encoding.text import tokenize_checked
    from probe.errors import UsageError

    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    with pytest.raises(UsageError, match="longer than the model's 75-token context"):
        tokenize_checked(tokenizer, 77, [LONG], truncate=False)


@pytest.mark.parametrize(
    "cached", ["ViT-B-16-SigLIP@webli", "xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k"], indirect=True
)
def test_cli_refuses_a_96_word_prompt_with_one_line(cached, invoke, monkeypatch, tmp_path):
    monkeypatch.setenv("PROBE_DEVICE", "cpu")
    result = invoke("--model", cached, "--out", tmp_path / "out", "invert", LONG, "--steps", "1")
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "prompt(s) longer than the model's" in result.stderr and "shorten them to" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture
def cached(request, tmp_path, monkeypatch):
    """The family's spec, its tag's weights written into an offline Hugging Face cache."""
    spec = request.param
    arch, tag = spec.split("@")
    hfcache.register_small(monkeypatch, arch)
    cache = tmp_path / "hf"
    hfcache.use_cache(monkeypatch, cache)
    hfcache.write_tag(cache, arch, tag, seed=3)
    return spec
