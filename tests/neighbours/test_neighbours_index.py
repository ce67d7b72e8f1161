import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
from probe_neighbours.index import IndexParams, exact_top_k, index_paths, make_index, open_index, recall_at_k
from probe_neighbours.vocabularies import load_vocab, make_vocabulary

from probe.errors import DataError, UsageError


def faiss_vector(vector) -> np.ndarray:
    import faiss

    return faiss.vector_to_array(vector)


@pytest.fixture(scope="module")
def english_500(tiny_session):
    words = load_vocab("english").words[:500]
    return words, tiny_session.encode_text(words).numpy()


def test_faiss_flat_top_k_equals_numpy_brute_force(tiny_session, english_500):
    _words, emb = english_500
    queries = tiny_session.encode_text(["a red star", "a photo of a dog", "music", "the ocean at night"]).numpy()
    scores, ids = make_index(emb, IndexParams()).search(queries, 10)
    brute = queries.astype(np.float64) @ emb.astype(np.float64).T
    expected_ids = np.argsort(-brute, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected_ids, axis=1), atol=1e-5)
    np.testing.assert_array_equal(exact_top_k(emb, queries, 10), expected_ids)


def test_few_queries_search_on_one_faiss_thread_and_restore_the_setting(tiny_session, english_500, monkeypatch):
    import faiss
    from probe_neighbours.index import SINGLE_THREAD_BELOW, VocabIndex

    words, emb = english_500
    vocab = make_vocabulary("t", words, source="test")
    index = VocabIndex(vocab, make_index(emb, IndexParams()), IndexParams(), Path("unused"), "built")
    threads_seen: list[int] = []
    real_search = index.index.search

    def spy(queries, k):
        threads_seen.append(faiss.omp_get_max_threads())
        return real_search(queries, k)

    monkeypatch.setattr(index.index, "search", spy)
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        few = tiny_session.encode_text(["a red star", "music"]).numpy()
        _, ids = index.search(few, 5)
        many = np.repeat(few, SINGLE_THREAD_BELOW // 2, axis=0)
        index.search(many, 5)
        assert threads_seen == [1, 2]
        assert faiss.omp_get_max_threads() == 2
        np.testing.assert_array_equal(ids, exact_top_k(emb, few, 5))
    finally:
        faiss.omp_set_num_threads(before)


def test_recall_of_exact_and_hnsw_indexes(english_500):
    _, emb = english_500
    rng = np.random.default_rng(0)
    queries = emb[rng.choice(len(emb), 50, replace=False)] + 0.05 * rng.standard_normal((50, emb.shape[1])).astype(
        np.float32
    )
    assert recall_at_k(make_index(emb, IndexParams()), emb, queries, 10) == 1.0
    assert recall_at_k(make_index(emb, IndexParams(kind="hnsw")), emb, queries, 10) >= 0.98


def test_unknown_index_kind_is_a_usage_error():
    with pytest.raises(UsageError) as error:
        IndexParams(kind="ivf-pq")
    assert str(error.value) == "unknown index kind 'ivf-pq' (use one of flat, hnsw)"


def test_the_cache_key_holds_the_hnsw_settings_and_the_index_is_built_with_them(english_500):
    """A flat index depends on nothing but its kind; an HNSW index is built (and keyed) with the
    settings the neighbours page documents: M=32, efConstruction=200, efSearch=256."""
    _, emb = english_500
    assert IndexParams().as_dict() == {"kind": "flat"}
    assert IndexParams(kind="flat", ef_search=64).as_dict() == {"kind": "flat"}
    hnsw = IndexParams(kind="hnsw")
    assert hnsw.as_dict() == {"kind": "hnsw", "hnsw_m": 32, "ef_construction": 200, "ef_search": 256}
    built: Any = make_index(emb[:50], hnsw)  # an IndexHNSWFlat
    assert (built.hnsw.efConstruction, built.hnsw.efSearch) == (200, 256)
    assert int(faiss_vector(built.hnsw.cum_nneighbor_per_level)[1]) == 2 * 32  # level 0 keeps 2M links


def test_cache_is_reused_when_nothing_changed(tiny_session, word_file):
    vocab = load_vocab(str(word_file))
    calls: list[int] = []
    first = open_index(tiny_session, vocab, progress=calls.append)
    assert first.status == "built" and sum(calls) == len(vocab.words)
    mtime = first.path.stat().st_mtime_ns
    calls.clear()
    second = open_index(tiny_session, load_vocab(str(word_file)), progress=calls.append)
    assert second.status == "cached" and second.message is None and calls == []
    assert second.path == first.path and second.path.stat().st_mtime_ns == mtime
    assert second.index.ntotal == len(vocab.words)


def test_changed_vocab_file_rebuilds_and_prunes_the_old_index(tiny_session, word_file):
    old = open_index(tiny_session, load_vocab(str(word_file)))
    old_prescan = old.path.with_suffix(".int8.npz")
    old_prescan.write_bytes(b"codes")
    kept = [old.path.parent / f"{old.path.stem}-notes.txt", old.path.parent / "other.flat.0123456789.faiss"]
    for path in kept:  # not an index file of this family, or another vocabulary's
        path.write_text("mine", encoding="utf-8")
    word_file.write_text(word_file.read_text() + "volcano\n", encoding="utf-8")
    new = open_index(tiny_session, load_vocab(str(word_file)))
    assert new.status == "built" and new.path != old.path and new.index.ntotal == old.index.ntotal + 1
    assert not old.path.exists() and not old.path.with_suffix(".json").exists() and not old_prescan.exists()
    assert new.path.exists() and new.path.with_suffix(".json").exists()
    assert all(path.read_text(encoding="utf-8") == "mine" for path in kept)


def test_changed_model_gets_its_own_index(tiny_session, other_tiny_spec, word_file):
    from probe.session import Session

    vocab = load_vocab(str(word_file))
    a = open_index(tiny_session, vocab)
    b = open_index(Session.open(other_tiny_spec, device="cpu"), vocab)
    assert b.status == "built" and b.path != a.path and a.path.exists()
    assert open_index(tiny_session, vocab).status == "cached"


def _flip_last_byte(ix: Path, side: Path) -> None:
    data = bytearray(ix.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    ix.write_bytes(bytes(data))


def _sealed(data: bytes):
    """A damage that writes `data` as the index and updates the sidecar's size and sha256 to match it."""

    def damage(ix: Path, side: Path) -> None:
        ix.write_bytes(data)
        meta = {
            **json.loads(side.read_text()),
            "index_bytes": len(data),
            "index_sha256": hashlib.sha256(data).hexdigest(),
        }
        side.write_text(json.dumps(meta), encoding="utf-8")

    return damage


def _index_bytes(rows: int, dim: int) -> bytes:
    import faiss

    return faiss.serialize_index(make_index(np.eye(rows, dim, dtype=np.float32), IndexParams())).tobytes()


def _other_dim(ix: Path, side: Path) -> None:
    """As many rows as the vocabulary has words, in 16 dimensions instead of the model's."""
    _sealed(_index_bytes(json.loads(side.read_text())["count"], 16))(ix, side)


@pytest.mark.parametrize(
    "damage, reason",
    [
        (
            lambda ix, side: ix.write_bytes(ix.read_bytes()[: len(ix.read_bytes()) // 2]),
            "index file truncated or modified (size/sha256 mismatch)",
        ),
        (lambda ix, side: ix.write_bytes(b""), "index file truncated or modified (size/sha256 mismatch)"),
        (_flip_last_byte, "index file truncated or modified (size/sha256 mismatch)"),
        (_sealed(b"not a faiss index"), "index file unreadable by FAISS"),
        (_sealed(_index_bytes(3, 32)), "index size does not match the vocabulary"),  # 3 rows: another word list
        (_other_dim, "index size does not match the vocabulary"),
        (lambda ix, side: ix.unlink(), "index file missing"),
        (lambda ix, side: side.write_text("{not json", encoding="utf-8"), "sidecar unreadable"),
        (lambda ix, side: side.write_text("[1, 2]", encoding="utf-8"), "sidecar unreadable"),  # JSON, not a mapping
        (lambda ix, side: side.unlink(), "sidecar missing"),
        (
            lambda ix, side: side.write_text(json.dumps({**json.loads(side.read_text()), "format": 0})),
            "stale: format changed",
        ),
        (
            lambda ix, side: side.write_text(json.dumps({**json.loads(side.read_text()), "count": 1, "params": {}})),
            "stale: count, params changed",
        ),
    ],
)
def test_damaged_or_stale_cache_is_rebuilt_with_a_message(tiny_session, word_file, damage, reason):
    vocab = load_vocab(str(word_file))
    built = open_index(tiny_session, vocab)
    index_file, sidecar = index_paths(tiny_session, vocab, IndexParams())
    damage(index_file, sidecar)
    again = open_index(tiny_session, vocab)
    assert again.status == "rebuilt"
    assert again.message == f"the cached index of {vocab.name!r} was unusable ({reason}); rebuilt it"
    q = tiny_session.encode_text(["a red star"]).numpy()
    np.testing.assert_array_equal(again.search(q, 5)[1], built.search(q, 5)[1])
    assert open_index(tiny_session, vocab).status == "cached"


def test_a_folder_where_the_index_goes_is_reported_and_left_alone(tiny_session, word_file):
    from probe.errors import ProbeError

    vocab = load_vocab(str(word_file))
    index_file, _ = index_paths(tiny_session, vocab, IndexParams())
    open_index(tiny_session, vocab)
    index_file.unlink()
    (index_file / "notes.txt").parent.mkdir()
    (index_file / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ProbeError, match=r"Is a directory \(a folder stands where the file goes: move it away\)$"):
        open_index(tiny_session, vocab)
    assert (index_file / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_the_index_file_is_named_for_vocabulary_kind_and_model_and_its_sidecar_records_the_build(
    tiny_session, word_file
):
    """`probe cache list` shows these names; the sidecar says what the index was built from."""
    import re

    vocab = load_vocab(str(word_file))
    built = open_index(tiny_session, vocab)
    assert re.fullmatch(r"words-txt-[0-9a-f]{8}\.flat\.[0-9a-f]{10}\.[0-9a-f]{20}\.faiss", built.path.name), (
        built.path.name
    )
    meta = json.loads(built.path.with_suffix(".json").read_text(encoding="utf-8"))
    data = built.path.read_bytes()
    assert {k: meta[k] for k in ("format", "fingerprint", "vocab_hash", "count", "params", "dim", "model")} == {
        "format": 1,
        "fingerprint": tiny_session.fingerprint,
        "vocab_hash": vocab.content_hash,
        "count": len(vocab.words),
        "params": {"kind": "flat"},
        "dim": tiny_session.embed_dim,
        "model": tiny_session.name,
    }
    assert (meta["index_bytes"], meta["index_sha256"]) == (len(data), hashlib.sha256(data).hexdigest())
    assert meta["recall_at_10"] == 1.0 and meta["build_seconds"] >= 0
    assert (meta["vocab"], meta["vocab_source"]) == (vocab.name, vocab.source) and vocab.source


def test_recall_counts_the_share_of_the_exact_top_k_an_index_returns(english_500):
    """An index that gets 6 of each query's exact top 10 has recall 0.6 (k = 10 unless asked)."""
    from probe_neighbours.index import sample_recall

    _, emb = english_500
    queries = emb[:4]

    class SixOfTen:  # each query's best 6 words, then its worst
        def __init__(self, rows: np.ndarray) -> None:
            self.rows = rows

        def search(self, q, k):
            order = np.argsort(-(q @ self.rows.T), axis=1, kind="stable")
            return None, np.concatenate([order[:, :6], order[:, -(k - 6) :]], axis=1)

    assert recall_at_k(cast(Any, SixOfTen(emb)), emb, queries) == pytest.approx(0.6)
    assert recall_at_k(cast(Any, SixOfTen(emb)), emb, queries, k=20) == pytest.approx(0.3)
    assert sample_recall(cast(Any, SixOfTen(emb[:50])), emb[:50], n=1000) == pytest.approx(
        0.6
    )  # more queries than words: all of them
    assert exact_top_k(emb[:3], queries, 10).shape == (4, 3)  # k beyond the rows: every row, best first
    assert recall_at_k(make_index(emb[:5], IndexParams()), emb[:5], queries) == 1.0  # 5 words: a top 5 is all of them


def test_rebuild_flag_and_hnsw_params_are_part_of_the_key(tiny_session, word_file):
    vocab = load_vocab(str(word_file))
    flat = open_index(tiny_session, vocab)
    assert open_index(tiny_session, vocab, rebuild=True).status == "rebuilt"
    hnsw = open_index(tiny_session, vocab, IndexParams(kind="hnsw"))
    assert hnsw.status == "built" and hnsw.path != flat.path and hnsw.recall_at_10 == 1.0
    assert hnsw.message is not None and "recall@10" in hnsw.message
    assert open_index(tiny_session, vocab, IndexParams(kind="hnsw", ef_search=64)).status == "built"


def test_entries_longer_than_the_context_are_a_data_error(tiny_session):
    vocab = make_vocabulary("long", ["ok", " ".join(["word"] * 40)])
    with pytest.raises(DataError) as error:
        open_index(tiny_session, vocab)
    assert str(error.value) == (
        f"vocabulary long: 1 prompt(s) longer than the model's {tiny_session.context_length - 2}-token context,"
        f" e.g. {vocab.words[1][:60]!r} (shorten or remove those lines)"
    )


def test_embedding_no_words_gives_no_rows(tiny_session):
    from probe_neighbours.index import embed_words

    emb = embed_words(tiny_session, [])
    assert emb.shape == (0, tiny_session.embed_dim) and emb.dtype == np.float32


BUILDER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from probe_neighbours.index import open_index
    from probe_neighbours.vocabularies import load_vocab
    from tests.neighbours.fakes import FakeTextSession
    vocab_file, me, other = sys.argv[1:]
    vocab = load_vocab(vocab_file)
    Path(me).touch()
    while not Path(other).exists():  # start building together
        time.sleep(0.01)
    ix = open_index(FakeTextSession(), vocab, batch_size=8, progress=lambda n: time.sleep(0.3))  # hold the lock a while
    print(json.dumps({"status": ix.status, "n": ix.index.ntotal}))
""")


@pytest.mark.slow
def test_two_concurrent_builders_leave_one_valid_index(word_file, tmp_path):
    from probe.files.cache import cache_dir
    from tests.neighbours.fakes import FakeTextSession

    root = Path(__file__).resolve().parents[2]
    a, b = tmp_path / "ready-a", tmp_path / "ready-b"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(word_file), str(me), str(other)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in ((a, b), (b, a))
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    statuses = sorted(json.loads(o[0])["status"] for o in outs)
    assert statuses == ["built", "cached"]  # the second waited for the first, then reused its index
    files = sorted(
        p.name for p in cache_dir("indexes").iterdir() if not p.name.endswith(".lock") and not p.name.startswith(".")
    )
    assert len(files) == 2 and files[0].endswith(".faiss") and files[1].endswith(".json")
    again = open_index(FakeTextSession(), load_vocab(str(word_file)))  # type: ignore[arg-type]  # a stand-in with the text methods open_index uses
    assert again.status == "cached" and again.index.ntotal == json.loads(outs[0][0])["n"] == 20


def test_asking_for_no_neighbours_or_searching_no_words_returns_empty_rows(english_500):
    """FAISS refuses k = 0; an index answers it (and any k over an empty vocabulary) with empty rows."""
    from probe_neighbours.index import VocabIndex

    words, emb = english_500
    for vocab_words, rows, k in [(words, emb, 0), ([], emb[:0], 10)]:
        vocab = make_vocabulary("t", vocab_words, source="test")
        index = VocabIndex(vocab, make_index(rows, IndexParams()), IndexParams(), Path("unused"), "built")
        scores, ids = index.search(emb[:3], k)
        assert scores.shape == ids.shape == (3, 0) and scores.dtype == np.float32 and ids.dtype == np.int64


def test_a_build_held_by_another_process_times_out_with_a_message(tiny_session, word_file, monkeypatch):
    from probe_neighbours import index as index_module

    from probe.errors import ProbeError
    from probe.files.cache import file_lock

    vocab = load_vocab(str(word_file))
    index_file, _ = index_paths(tiny_session, vocab, IndexParams())
    monkeypatch.setattr(index_module, "LOCK_TIMEOUT_S", 0.05)
    with file_lock(index_file, timeout=1), pytest.raises(ProbeError) as error:
        open_index(tiny_session, vocab)
    assert str(error.value) == (
        f"timed out waiting for another process building {index_file.name} (retry when it finishes)"
    )


def test_build_messages_and_what_a_cached_index_remembers(tiny_session, word_file, monkeypatch):
    """Flat recall is exact by construction (never sampled); an HNSW index's is measured and reported.
    A cached index brings back its build's recall, time and sha256."""
    import re
    from datetime import datetime, timezone

    from probe_neighbours import index as index_module

    vocab = load_vocab(str(word_file))
    monkeypatch.setattr(index_module, "sample_recall", lambda *a, **kw: pytest.fail("a flat index sampled its recall"))
    built = open_index(tiny_session, vocab)
    assert built.message is not None
    assert re.fullmatch(
        rf"built the flat index of {vocab.name!r}: {len(vocab.words)} words in \d+\.\d s", built.message
    )
    meta = json.loads(built.path.with_suffix(".json").read_text(encoding="utf-8"))
    assert 0 <= meta["build_seconds"] < 600 and meta["build_seconds"] == round(meta["build_seconds"], 3)
    stamp = datetime.strptime(meta["built_at"], "%Y-%m-%dT%H:%M:%S%z")
    assert abs((datetime.now(timezone.utc) - stamp).total_seconds()) < 600
    cached = open_index(tiny_session, vocab)
    assert cached.status == "cached"
    assert (cached.recall_at_10, cached.build_seconds, cached.index_sha256) == (
        1.0,
        meta["build_seconds"],
        meta["index_sha256"],
    )
    rebuilt = open_index(tiny_session, vocab, rebuild=True)
    assert rebuilt.message == f"rebuilt the flat index of {vocab.name!r} (--rebuild)"
    monkeypatch.setattr(index_module, "sample_recall", lambda *a, **kw: 0.5)
    hnsw = open_index(tiny_session, vocab, IndexParams(kind="hnsw", ef_search=64))
    assert hnsw.recall_at_10 == 0.5 and hnsw.message is not None
    assert re.fullmatch(
        rf"built the hnsw index of {vocab.name!r}: {len(vocab.words)} words in \d+\.\d s;"
        rf" recall@10 vs exact on {len(vocab.words)} sampled words: 0\.500",
        hnsw.message,
    )
    cached_hnsw: Any = open_index(tiny_session, vocab, IndexParams(kind="hnsw", ef_search=64)).index
    assert cached_hnsw.hnsw.efSearch == 64  # saved with the index (and part of its key)


def test_index_settings_cannot_change_under_a_built_index():
    import dataclasses

    params = IndexParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.kind = "hnsw"  # type: ignore[misc]


def test_recall_is_sampled_over_distinct_words(english_500):
    from probe_neighbours.index import sample_recall

    _, emb = english_500
    seen: list[np.ndarray] = []

    class Recording:
        def search(self, q, k):
            seen.append(q)
            return None, exact_top_k(emb, q, k)

    assert sample_recall(cast(Any, Recording()), emb, n=500) == 1.0
    assert len(np.unique(seen[0], axis=0)) == 500  # every word once (the english list has no duplicates)


def test_a_long_vocabulary_name_is_cut_to_40_characters_in_the_file_name(tiny_session):
    vocab = make_vocabulary("x" * 60, ["a", "b"])
    index_file, _ = index_paths(tiny_session, vocab, IndexParams())
    assert index_file.name.startswith("x" * 40 + "-") and not index_file.name.startswith("x" * 41)


def test_equal_scores_come_lowest_id_first_whatever_order_faiss_gave():
    """The documented tie rule, on rows as FAISS may hand them back (ties in heap order)."""
    from probe_neighbours.index import ties_by_id

    scores = np.array([[0.5, 0.9, 0.5, 0.5], [0.2, 0.2, 0.2, 0.1]], dtype=np.float32)
    ids = np.array([[7, 3, 5, 1], [9, 4, 6, 0]])
    got_scores, got_ids = ties_by_id(scores, ids)
    assert got_ids.tolist() == [[3, 1, 5, 7], [4, 6, 9, 0]]
    assert np.allclose(got_scores, [[0.9, 0.5, 0.5, 0.5], [0.2, 0.2, 0.2, 0.1]])
