"""The certified int8 pre-scan: same answers as the flat scan, a bound that holds, a safe cache file."""

from pathlib import Path

import numpy as np
import pytest

from probe_neighbours.index import PREFILTER_MIN_ROWS, PREFILTER_SUFFIX, IndexParams, VocabIndex, make_index
from probe_neighbours.prefilter import Int8Prefilter
from probe_neighbours.vocabularies import make_vocabulary


def unit_rows(rng: np.random.Generator, n: int, dim: int, offset: float = 0.0) -> np.ndarray:
    """Unit vectors; an offset along one shared direction crowds them like text embeddings do."""
    x = rng.standard_normal((n, dim)).astype(np.float32) + offset
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vocab_index(emb: np.ndarray, path: Path, sha: str | None = "sha-of-index") -> VocabIndex:
    vocab = make_vocabulary("t", [f"w{i}" for i in range(len(emb))], source="test")
    return VocabIndex(vocab, make_index(emb, IndexParams()), IndexParams(), path, "built", index_sha256=sha)


def one_by_one(index: VocabIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    found = [index.search(q[None, :], k) for q in queries]
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


@pytest.fixture(scope="module")
def spread():
    rng = np.random.default_rng(0)
    return unit_rows(rng, PREFILTER_MIN_ROWS + 100, 64), unit_rows(rng, 40, 64)


def test_single_queries_through_the_prescan_equal_the_flat_scan(spread, tmp_path):
    emb, queries = spread
    index = vocab_index(emb, tmp_path / "v.faiss")
    scores, ids = one_by_one(index, queries, 10)
    flat_scores, flat_ids = index.index.search(queries, 10)
    assert index.prefilter is not None and index.prefilter_fallbacks == 0  # every answer came from the pre-scan
    np.testing.assert_array_equal(ids, flat_ids)
    np.testing.assert_allclose(scores, flat_scores, atol=1e-6)


def test_crowded_scores_fall_back_to_the_flat_scan_and_stay_exact(spread, tmp_path):
    emb, queries = spread
    crowded = emb.copy()
    crowded[:300] = queries[0]  # 300 words tie for the top: more than the pre-scan hands on, so it cannot certify
    index = vocab_index(crowded, tmp_path / "v.faiss")
    scores, ids = one_by_one(index, queries[:5], 10)
    flat_scores, flat_ids = index.index.search(queries[:5], 10)
    assert index.prefilter_fallbacks == 1
    np.testing.assert_array_equal(ids, flat_ids)
    np.testing.assert_allclose(scores, flat_scores, atol=1e-6)


def test_error_bound_holds_for_every_row(spread):
    emb, queries = spread
    pre = Int8Prefilter.build(emb)
    decoded = pre.mean + pre.codes.sa_decode(pre.codes.sa_encode(np.rint((emb - pre.mean) * pre.scale))) / pre.scale
    err = np.abs(queries.astype(np.float64) @ (emb - decoded).T.astype(np.float64))
    assert err.max() <= pre.bound * np.linalg.norm(queries, axis=1).max()
    assert 0 < pre.bound < 0.05


def test_prescan_is_saved_beside_the_index_and_reused_only_for_that_index(spread, tmp_path):
    emb, queries = spread
    path = tmp_path / "v.faiss"
    vocab_index(emb, path).search(queries[:1], 10)
    saved = path.with_suffix(PREFILTER_SUFFIX)
    assert saved.is_file()
    rows = np.ascontiguousarray(emb)
    loaded = Int8Prefilter.load(saved, rows, "sha-of-index")
    assert loaded is not None and loaded.bound == Int8Prefilter.build(emb).bound
    assert Int8Prefilter.load(saved, rows, "sha-of-another-index") is None
    saved.write_bytes(saved.read_bytes()[:1000])  # truncated by a crash or a full disk
    assert Int8Prefilter.load(saved, rows, "sha-of-index") is None
    again = vocab_index(emb, path)
    np.testing.assert_array_equal(again.search(queries[:3], 10)[1], again.index.search(queries[:3], 10)[1])
    assert Int8Prefilter.load(saved, rows, "sha-of-index") is not None  # rewritten whole


def test_small_indexes_and_batches_skip_the_prescan(spread, tmp_path):
    emb, queries = spread
    small = vocab_index(emb[:1000], tmp_path / "s.faiss")
    small.search(queries[:1], 10)
    big = vocab_index(emb, tmp_path / "b.faiss")
    big.search(queries, 10)  # 40 queries: one BLAS scan
    assert small.prefilter is None and big.prefilter is None
