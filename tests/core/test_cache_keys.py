"""Every cache key and fingerprint follows every input that can change a result.

A cache answers for a result only while nothing the result depends on has changed. For each key the
tests below change each input in turn (a vocabulary's words *and their order*, the model's weights
and config, the tokenizer, the settings) and assert the key changes or the cache is rebuilt; and
that what does not change a result (the same words read again, settings that only pace the work)
keeps the key, so the caches still hit. Random edits are drawn from a seeded generator (the same
cases every run): property-style without a new dependency.
"""

from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any

import pytest

WORDS = [f"w{i:03d}" for i in range(40)]
CASES = 25  # random edits per property


def _edits(rng: random.Random, words: list[str]) -> list[tuple[str, list[str]]]:
    """(what changed, new words): a reorder, a word replaced, dropped or added, one at a time."""
    i, j = rng.sample(range(len(words)), 2)
    swapped = list(words)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    replaced = list(words)
    replaced[i] = replaced[i] + "x"
    return [
        ("two words swapped", swapped),
        ("reversed", words[::-1]),
        ("one word replaced", replaced),
        ("one word dropped", words[:i] + words[i + 1 :]),
        ("one word added", [*words, "extra"]),
    ]


# --- vocabularies -----------------------------------------------------------------------------------


def test_a_vocabularys_hash_follows_its_words_and_their_order():
    """Row i of an index is word i of the vocabulary it was built from: any change of the list,
    a reorder included, must give another hash (the index key holds it)."""
    from probe.vocabulary import make_vocabulary

    rng = random.Random(0)
    for _ in range(CASES):
        words = rng.sample(WORDS, rng.randint(2, len(WORDS)))
        base = make_vocabulary("v", words).content_hash
        assert make_vocabulary("other name", list(words), {"w000": "x"}, "src").content_hash == base
        for what, changed in _edits(rng, words):
            if changed != words:
                assert make_vocabulary("v", changed).content_hash != base, what


@pytest.mark.slow
def test_a_reordered_word_file_gives_the_right_words(tiny_session, tmp_path):
    """End to end: the same words in another order in the same file rebuild the index, and
    neighbours names the words the new file's rows hold (not the old order's)."""
    from probe_neighbours.query import text_neighbours

    path = tmp_path / "words.txt"
    words = ["red", "blue", "green", "star", "circle", "square", "dog", "cat", "car", "tree"]
    path.write_text("\n".join(words) + "\n")
    first = text_neighbours(tiny_session, ["a red star"], [str(path)], k=10)[0]
    path.write_text("\n".join(reversed(words)) + "\n")
    again = text_neighbours(tiny_session, ["a red star"], [str(path)], k=10)[0]
    assert [(n.word, round(n.score, 5)) for n in again.neighbours] == [
        (n.word, round(n.score, 5)) for n in first.neighbours
    ]
    emb = tiny_session.encode_text(["a red star", *words])
    truth = sorted(words, key=lambda w: -float(emb[0] @ emb[1 + words.index(w)]))
    assert [n.word for n in again.neighbours][:3] == truth[:3]


# --- the neighbours index ------------------------------------------------------------------------------


def test_the_index_key_follows_model_tokenizer_vocabulary_and_settings(tiny_session):
    from probe_neighbours.index import IndexParams, index_paths

    from probe.vocabulary import make_vocabulary

    vocab = make_vocabulary("v", WORDS)
    params = IndexParams()
    base = index_paths(tiny_session, vocab, params)
    assert index_paths(copy.copy(tiny_session), make_vocabulary("v", list(WORDS)), IndexParams()) == base

    other_model = copy.copy(tiny_session)
    other_model.fingerprint = tiny_session.fingerprint + "0"
    other_tokenizer = copy.copy(tiny_session)
    other_tokenizer.tokenizer = copy.copy(tiny_session.tokenizer)
    other_tokenizer.tokenizer.context_length = tiny_session.context_length - 1
    changed = {
        "model": index_paths(other_model, vocab, params),
        "tokenizer": index_paths(other_tokenizer, vocab, params),
        "vocabulary order": index_paths(tiny_session, make_vocabulary("v", WORDS[::-1]), params),
        "index kind": index_paths(tiny_session, vocab, IndexParams(kind="hnsw")),
        "hnsw m": index_paths(tiny_session, vocab, IndexParams(kind="hnsw", hnsw_m=16)),
        "hnsw ef_search": index_paths(tiny_session, vocab, IndexParams(kind="hnsw", ef_search=64)),
    }
    for what, paths in changed.items():
        assert paths[0] != base[0], what
    assert len({p[0] for p in changed.values()}) == len(changed)


# --- model fingerprints --------------------------------------------------------------------------------


def _local_dir(folder: Path, config: str = '{"a": 1}', weights: bytes = b"w" * 64) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(config)
    (folder / "open_clip_model.safetensors").write_bytes(weights)
    return f"local-dir:{folder}"


def test_a_local_dir_fingerprint_follows_its_weights_config_and_every_weights_file(tmp_path):
    from probe.models.fingerprints import fingerprint_without_loading
    from probe.models.specs import parse_model_spec

    def fp(spec: str, pickle: bool = False) -> str | None:
        return fingerprint_without_loading(parse_model_spec(spec), pickle)

    base = fp(_local_dir(tmp_path / "a"))
    assert fp(_local_dir(tmp_path / "a")) == base  # the same files again
    changed = {
        "weights": fp(_local_dir(tmp_path / "a", weights=b"w" * 63 + b"v")),
        "config": fp(_local_dir(tmp_path / "a", config='{"a": 2}')),
    }
    _local_dir(tmp_path / "a")
    (tmp_path / "a" / "extra.safetensors").write_bytes(b"more")
    changed["another weights file"] = fp(f"local-dir:{tmp_path / 'a'}")
    for what, value in changed.items():
        assert value != base, what


def test_the_state_dict_digest_follows_every_value_name_dtype_and_shape():
    """The fingerprint of a model a plugin loads without one is hashed from its state dict."""
    import torch

    from probe.models.loading import state_dict_digest

    torch.manual_seed(0)
    first, second = torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)
    model = torch.nn.Sequential(first, second)
    base = state_dict_digest(model)
    assert state_dict_digest(copy.deepcopy(model)) == base
    rng = random.Random(0)
    for _ in range(CASES):
        other = copy.deepcopy(model)
        params = list(other.parameters())
        p = params[rng.randrange(len(params))]
        with torch.no_grad():
            p.view(-1)[rng.randrange(p.numel())] += 1e-3  # one value, slightly
        assert state_dict_digest(other) != base
    assert state_dict_digest(copy.deepcopy(model).double()) != base  # dtype
    renamed = torch.nn.Sequential()
    renamed.add_module("first", copy.deepcopy(first))
    renamed.add_module("1", copy.deepcopy(second))
    assert state_dict_digest(renamed) != base  # names
    transposed = copy.deepcopy(second)
    transposed.weight = torch.nn.Parameter(second.weight.detach().reshape(4, 2).clone())
    reshaped = torch.nn.Sequential(copy.deepcopy(first), transposed)
    assert state_dict_digest(reshaped) != base  # shape (same bytes)


def test_a_big_files_remembered_sha256_follows_a_rewrite_of_the_same_size(tmp_path):
    """Big checkpoints' sha256 is remembered by path, size and mtime; a file overwritten in place with
    other bytes of the same size (a conversion, a fine-tune saved over) must be hashed again."""
    from probe.files.cache import file_sha256, hash_file

    path = tmp_path / "big.safetensors"
    size = (64 << 20) + 1  # just over the size worth remembering
    with path.open("wb") as f:
        f.truncate(size)  # sparse: fast to write
    first = file_sha256(path)
    assert file_sha256(path) == first  # remembered (and right)
    with path.open("r+b") as f:
        f.seek(size // 2)
        f.write(b"\x01")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a later write, whatever the clock's grain
    assert path.stat().st_size == size
    assert file_sha256(path) == hash_file(path) != first


# --- text snapshots --------------------------------------------------------------------------------------


def test_a_text_snapshots_key_follows_the_fingerprint_code_and_tokenizer_inputs(tmp_path):
    from probe.encoding import snapshot
    from probe.models.specs import parse_model_spec

    spec = parse_model_spec(_local_dir(tmp_path / "m", config='{"model_cfg": {"text_cfg": {"context_length": 16}}}'))
    versions = snapshot._snapshot_versions(spec)
    base = snapshot._paths("fp", versions)
    assert snapshot._paths("fp", snapshot._snapshot_versions(spec)) == base
    _local_dir(tmp_path / "m", config='{"model_cfg": {"text_cfg": {"context_length": 12}}}')
    changed = {
        "fingerprint": snapshot._paths("fp2", versions),
        "tokenizer inputs (the config)": snapshot._paths("fp", snapshot._snapshot_versions(spec)),
    }
    for key in ("torch", "open_clip", "clip_probe", "code", "format"):
        changed[key] = snapshot._paths("fp", {**versions, key: str(versions[key]) + "+1"})
    for what, paths in changed.items():
        assert paths[0] != base[0], what


# --- inversions ------------------------------------------------------------------------------------------


def test_an_inversions_key_follows_everything_that_decides_its_pixels():
    from probe_invert.outputs import NON_RESULT_KEYS, result_key

    settings: dict[str, Any] = {
        "steps": 100,
        "lr": 0.05,
        "batch_size": 4,
        "snapshot_every": 0,
        "preset": "x",
        "tv": 0.0,
    }
    args: dict[str, Any] = {"prompt": "a star", "seed": 0, "fingerprint": "m", "device": "cpu", "precision": "fp32"}
    base = result_key(**args, settings=settings)
    changed: dict[str, dict[str, Any]] = {
        "prompt": {"prompt": "a star."},
        "seed": {"seed": 1},
        "fingerprint": {"fingerprint": "m2"},
        "device": {"device": "cuda:0"},
        "precision": {"precision": "bf16"},
    }
    for what, change in changed.items():
        assert result_key(**{**args, **change}, settings=settings) != base, what
    for knob in ("steps", "lr", "tv"):
        assert result_key(**args, settings={**settings, knob: settings[knob] + 1}) != base, knob
    assert result_key(**args, settings={**settings, "new_knob": 0}) != base
    for knob in NON_RESULT_KEYS:  # pacing and naming only: the same pixels, so the key holds
        assert result_key(**args, settings={**settings, knob: "other"}) == base, knob
