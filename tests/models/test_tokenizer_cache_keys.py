"""Caches of text embeddings are keyed by the tokenizer's content too: after only the tokenizer
changed (same weights), the vocabulary index is rebuilt and the text snapshot is not reused."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import pytest


def _retokenized(session):
    """The same session (same weights, same fingerprint) with a tokenizer that cleans text
    differently: case is kept, so 'Red' and 'red' are no longer the same tokens."""
    import open_clip

    other = copy.copy(session)
    other.tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=session.context_length, clean="whitespace")
    assert other.fingerprint == session.fingerprint
    return other


def test_tokenizer_fingerprint_follows_the_tokenizers_content():
    import open_clip

    from probe.encoding.tokenizer import tokenizer_fingerprint

    simple = open_clip.tokenizer.SimpleTokenizer
    base = tokenizer_fingerprint(simple(context_length=77))
    assert tokenizer_fingerprint(simple(context_length=77)) == base  # stable across instances
    assert tokenizer_fingerprint(simple(context_length=64)) != base
    assert tokenizer_fingerprint(simple(context_length=77, clean="whitespace")) != base
    assert tokenizer_fingerprint(simple(context_length=77, additional_special_tokens=["<x>"])) != base
    swapped = simple(context_length=77)
    ranks = list(swapped.bpe_ranks)
    ranks[0], ranks[1] = ranks[1], ranks[0]
    swapped.bpe_ranks = dict(zip(ranks, range(len(ranks)), strict=True))  # one merge order changed
    assert tokenizer_fingerprint(swapped) != base


def test_hf_tokenizer_fingerprint_follows_its_vocabulary(tmp_path):
    pytest.importorskip("transformers")
    from open_clip.tokenizer import HFTokenizer

    from probe.encoding.tokenizer import tokenizer_fingerprint
    from tests.models import hfcache

    hfcache.save_tokenizer(tmp_path / "a", 16, hfcache.TEMPLATES["xlm-roberta"])
    hfcache.save_tokenizer(tmp_path / "b", 16, hfcache.TEMPLATES["siglip-t5"])
    a, b = (tokenizer_fingerprint(HFTokenizer(str(tmp_path / n), context_length=16)) for n in "ab")
    assert a != b
    assert tokenizer_fingerprint(HFTokenizer(str(tmp_path / "a"), context_length=16)) == a


def test_neighbours_index_is_rebuilt_when_only_the_tokenizer_changed(tiny_session, tmp_path):
    from probe_neighbours.index import open_index
    from probe_neighbours.vocabularies import load_vocab

    words = tmp_path / "words.txt"
    words.write_text("red\nRed\nblue\nstar\n", encoding="utf-8")
    vocab = load_vocab(str(words))
    assert open_index(tiny_session, vocab).status in ("built", "cached")
    assert open_index(tiny_session, vocab).status == "cached"
    other = _retokenized(tiny_session)
    rebuilt = open_index(other, vocab)
    assert rebuilt.status == "built"
    assert open_index(other, vocab).status == "cached"


@pytest.mark.slow
def test_text_snapshot_is_not_reused_when_only_the_tokenizer_changed(tiny_spec, tiny_session, tmp_path, monkeypatch):
    from probe.encoding.snapshot import open_text_snapshot, save_text_snapshot
    from probe.encoding.tokenizer import tokenizer_module

    assert save_text_snapshot(tiny_session) is not None
    assert open_text_snapshot(tiny_spec, device="cpu") is not None
    module = tokenizer_module()
    lines = gzip.decompress(Path(module.default_bpe()).read_bytes()).decode("utf-8").split("\n")
    lines[1], lines[2] = lines[2], lines[1]  # a BPE vocabulary with two merges in the other order
    changed = tmp_path / "bpe.txt.gz"
    changed.write_bytes(gzip.compress("\n".join(lines).encode("utf-8")))
    monkeypatch.setattr(module, "default_bpe", lambda: str(changed))
    assert open_text_snapshot(tiny_spec, device="cpu") is None
