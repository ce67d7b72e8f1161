"""The certified int8 pre-scan: same answers as the flat scan, a bound that holds, a safe cache file."""

from pathlib import Path

import numpy as np
import pytest
from probe_neighbours.index import PREFILTER_MIN_ROWS, PREFILTER_SUFFIX, IndexParams, VocabIndex, make_index, ties_by_id
from probe_neighbours.prefilter import Int8Prefilter
from probe_neighbours.vocabularies import make_vocabulary


def unit_rows(rng: np.random.Generator, n: int, dim: int, offset: float = 0.0) -> np.ndarray:
    """Unit vectors; an offset along one shared direction crowds them like text embeddings do."""
    x = rng.standard_normal((n, dim)).astype(np.float32) + offset
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vocab_index(emb: np.ndarray, path: Path, sha: str | None = "sha-of-index") -> VocabIndex:
    vocab = make_vocabulary("t", [f"w{i}" for i in range(len(emb))], source="test")
    return VocabIndex(vocab, make_index(emb, IndexParams()), IndexParams(), path, "built", index_sha256=sha)


def assert_same_answer(index: VocabIndex, queries: np.ndarray, got: tuple[np.ndarray, np.ndarray], k: int) -> None:
    """What the one-thread flat scan answers: its scores bit for bit and its ids in the same order
    (equal scores lowest id first), except which of several words with exactly the k-th score make
    the cut: FAISS's heap decides that, so there each id must only be a distinct word with that score."""
    from probe_neighbours.prefilter import _flat_scores

    flat_scores, flat_ids = ties_by_id(*flat_one_thread(index, queries, k))
    np.testing.assert_array_equal(got[0], flat_scores)
    rows = index.index.reconstruct_n(0, index.index.ntotal)
    for q, s_row, i_row, f_row in zip(queries, got[0], got[1], flat_ids, strict=True):
        above = s_row > s_row[-1]
        np.testing.assert_array_equal(i_row[above], f_row[above])
        assert len(set(i_row.tolist())) == k
        np.testing.assert_array_equal(_flat_scores(rows[i_row[~above]], q), s_row[~above])


def flat_one_thread(index: VocabIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The flat scan query by query on one thread, as VocabIndex runs it (FAISS breaks ties by thread)."""
    from probe_neighbours.index import faiss_threads

    with faiss_threads(1):
        found = [index.index.search(q[None, :], k) for q in queries]
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def one_by_one(index: VocabIndex, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    found = [index.search(q[None, :], k) for q in queries]
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


@pytest.fixture(autouse=True)
def prescan_from_the_first_query(monkeypatch):
    """Processes normally answer their first PREFILTER_AFTER queries by the flat scan; tests start at once."""
    monkeypatch.setattr("probe_neighbours.index.PREFILTER_AFTER", 0)


@pytest.fixture(scope="module")
def spread():
    rng = np.random.default_rng(0)
    return unit_rows(rng, PREFILTER_MIN_ROWS + 100, 64), unit_rows(rng, 40, 64)


def test_single_queries_through_the_prescan_equal_the_flat_scan(spread, tmp_path):
    emb, queries = spread
    index = vocab_index(emb, tmp_path / "v.faiss")
    found = one_by_one(index, queries, 10)
    assert index.prefilter is not None and index.prefilter_fallbacks == 0  # every answer came from the pre-scan
    assert_same_answer(index, queries, found, 10)


def test_crowded_scores_fall_back_to_the_flat_scan_and_stay_exact(spread, tmp_path):
    emb, queries = spread
    crowded = emb.copy()
    crowded[:300] = queries[0]  # 300 words tie for the top: more than the pre-scan hands on, so it cannot certify
    index = vocab_index(crowded, tmp_path / "v.faiss")
    found = one_by_one(index, queries[:5], 10)
    assert index.prefilter_fallbacks == 1
    assert_same_answer(index, queries[:5], found, 10)


def test_an_index_whose_prescan_mostly_falls_back_stops_using_it(spread, tmp_path):
    from probe_neighbours.index import PREFILTER_TRIAL

    emb, queries = spread
    crowded = emb.copy()
    crowded[:300] = queries[0]
    index = vocab_index(crowded, tmp_path / "v.faiss")
    for _ in range(PREFILTER_TRIAL + 5):
        _scores, ids = index.search(queries[:1], 10)
    assert index.prefilter_queries == index.prefilter_fallbacks == PREFILTER_TRIAL
    np.testing.assert_array_equal(ids, ties_by_id(*index.index.search(queries[:1], 10))[1])


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


def test_a_process_uses_the_prescan_only_after_its_first_queries(spread, tmp_path, monkeypatch):
    from probe_neighbours import index as index_module

    monkeypatch.setattr(index_module, "PREFILTER_AFTER", 20)
    emb, queries = spread
    index = vocab_index(emb, tmp_path / "v.faiss")
    for q in queries[:20]:
        index.search(q[None, :], 10)
    assert (
        index.prefilter is None and not (tmp_path / f"v{PREFILTER_SUFFIX}").exists()
    )  # a one-shot call never loads it
    index.search(queries[20:21], 10)
    assert index.prefilter is not None and index.prefilter_queries == 1


def test_duplicate_words_tie_broken_like_the_flat_scan(spread, tmp_path):
    emb, queries = spread
    dup = emb.copy()
    dup[5000:6000] = dup[:1000]  # e.g. "Apple" and "apple": identical embeddings after lower-casing
    index = vocab_index(dup, tmp_path / "v.faiss")
    probes = np.concatenate([dup[:30], queries])
    for k in (1, 2, 10):
        found = one_by_one(index, probes, k)
        assert_same_answer(index, probes, found, k)


def test_crowded_clustered_embeddings_still_equal_the_flat_scan(tmp_path):
    rng = np.random.default_rng(3)
    centres = unit_rows(rng, 8, 64)
    emb = centres[rng.integers(0, 8, PREFILTER_MIN_ROWS)] + 0.05 * rng.standard_normal((PREFILTER_MIN_ROWS, 64)).astype(
        np.float32
    )
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    queries = emb[rng.choice(len(emb), 60, replace=False)] + 0.01 * rng.standard_normal((60, 64)).astype(np.float32)
    index = vocab_index(emb, tmp_path / "v.faiss")
    found = one_by_one(index, queries, 10)
    assert_same_answer(index, queries, found, 10)
    assert index.prefilter_queries > 0


def test_equal_scores_come_lowest_id_first_on_every_path(tmp_path):
    from probe_neighbours.index import ties_by_id

    scores = np.array([[0.9, 0.5, 0.5, 0.5, 0.1]], np.float32)
    ids = np.array([[4, 9, 2, 7, 1]])
    s, i = ties_by_id(scores, ids)
    assert i.tolist() == [[4, 2, 7, 9, 1]] and s.tolist() == scores.tolist()
    rng = np.random.default_rng(4)
    emb = unit_rows(rng, PREFILTER_MIN_ROWS, 32)
    emb[7000:7021] = emb[1]  # 22 equal words
    index = vocab_index(emb, tmp_path / "v.faiss")
    batched = index.search(emb[[1] * 25], 10)[1]  # 25 queries: the multi-threaded scan
    single = index.search(emb[1][None, :], 10)[1]  # the pre-scan
    assert single.tolist() == [[1, *range(7000, 7009)]]  # the pre-scan keeps the lowest of the tied ids
    for row in batched:  # FAISS's heap picks which tied ids make the cut; they still come in id order
        assert set(row.tolist()) <= {1, *range(7000, 7021)} and row.tolist() == sorted(row.tolist())


def test_the_bound_is_within_half_a_quantisation_step_per_dimension(spread):
    """Each dimension is cut into 2 x 127 steps over its own span, so no row is off by more than half
    a step per dimension (plus the fp32 slack the bound adds)."""
    emb, _ = spread
    pre = Int8Prefilter.build(emb)
    centred = emb.astype(np.float64) - emb.astype(np.float64).mean(axis=0)
    span = np.abs(centred).max(axis=0)
    half_steps = 0.5 * np.linalg.norm(span / 127)
    slack = emb.shape[1] * float(np.finfo(np.float32).eps) * span.max()
    assert 0 < pre.bound <= half_steps + 2 * slack


def test_a_dimension_that_never_varies_costs_nothing(spread, tmp_path):
    emb, queries = spread
    flat = emb.copy()
    flat[:, 0] = 0.25  # e.g. a padded or dead embedding dimension
    varied = Int8Prefilter.build(emb[:, 1:])
    assert Int8Prefilter.build(flat).bound == pytest.approx(varied.bound, rel=1e-3)
    index = vocab_index(flat, tmp_path / "v.faiss")
    found = one_by_one(index, queries[:5], 10)
    assert index.prefilter_fallbacks == 0
    assert_same_answer(index, queries[:5], found, 10)


def test_a_prescan_file_with_pickled_or_misshapen_parts_is_not_used(spread, tmp_path):
    emb, queries = spread
    path = tmp_path / "v.faiss"
    vocab_index(emb, path).search(queries[:1], 10)
    saved = path.with_suffix(PREFILTER_SUFFIX)
    rows = np.ascontiguousarray(emb)
    with np.load(saved) as data:
        parts = dict(data)

    def rewritten(**changes) -> Path:
        out = tmp_path / f"changed{PREFILTER_SUFFIX}"
        with out.open("wb") as f:
            np.savez(f, **{**parts, **changes})
        return out

    assert Int8Prefilter.load(rewritten(), rows, "sha-of-index") is not None  # unchanged parts load
    assert Int8Prefilter.load(rewritten(), rows[:-1], "sha-of-index") is None  # codes for another row count
    assert Int8Prefilter.load(rewritten(codes=np.array([object()], dtype=object)), rows, "sha-of-index") is None
    assert Int8Prefilter.load(rewritten(scale=parts["scale"][:-1]), rows, "sha-of-index") is None
    assert Int8Prefilter.load(rewritten(mean=parts["mean"][:-1]), rows, "sha-of-index") is None


def test_the_bound_covers_every_rows_residual_measured_in_float64(spread):
    emb, _ = spread
    pre = Int8Prefilter.build(emb)
    x = emb.astype(np.float64)
    codes = np.clip(np.rint((emb - pre.mean) * pre.scale), -127, 127).astype(np.float64)
    residual = x - pre.mean.astype(np.float64) - codes / pre.scale.astype(np.float64)
    assert pre.bound >= np.sqrt((residual * residual).sum(axis=1)).max()


def test_with_every_row_a_candidate_the_rerank_is_the_answer():
    """No row is left outside the rerank, so nothing needs certifying, however crowded the scores."""
    rng = np.random.default_rng(5)
    same = np.repeat(unit_rows(rng, 1, 16), 50, axis=0)  # fifty copies of one word: every score ties
    found = Int8Prefilter.build(same).search_one(same[0], 5, candidates=50)
    assert found is not None
    scores, ids = found
    assert ids.tolist() == [0, 1, 2, 3, 4] and len(set(scores.tolist())) == 1


def test_the_margin_terms_are_the_bounds_derived_by_hand():
    """Four words on a grid the int8 codes hit exactly, around a mean of (0.25, 0.25):
    scale a = (127, 254), codes (+-127, 0) and (0, +-127), residuals 0, so R is only its fp32 slack
    2 eps x span 1. The query (0.5, 0.25) scales to b = 127^2 / 0.5 = 32258 and rounds
    (127, 31.75) to (127, 32), a quarter of a step on the second axis: 0.25 / b x max|c| 127."""
    eps = float(np.finfo(np.float32).eps)
    emb = np.array([[1.25, 0.25], [-0.75, 0.25], [0.25, 0.75], [0.25, -0.25]], dtype=np.float32)
    pre = Int8Prefilter.build(emb)
    assert pre.mean.tolist() == [0.25, 0.25] and pre.scale.tolist() == [127.0, 254.0]
    assert pre.bound == 2 * eps and pre.code_norm == 127.0
    row_norm = float(np.sqrt(np.float32(1.625))) * (1 + 1e-6)  # the longest row's norm, taken in fp32, widened
    assert pre.row_norm == pytest.approx(row_norm, rel=1e-12)
    query = np.array([0.5, 0.25], dtype=np.float32)
    q_int, b = pre.quantise_query(query)
    assert q_int.tolist() == [127.0, 32.0] and b == pytest.approx(32258.0, rel=1e-12)
    margin = pre.margin(query)
    q_norm = np.sqrt(0.3125)
    assert margin.residual == pytest.approx(q_norm * 2 * eps, rel=1e-12)
    assert margin.query_rounding == pytest.approx(0.25 / 254, rel=1e-9)
    assert margin.kernel_rounding == pytest.approx(1.01 * 2 * eps * q_norm * row_norm, rel=1e-12)
    assert margin.shift_rounding == pytest.approx(2 * 2 * eps * 0.1875, rel=1e-12)  # q.mu = 0.1875
    assert margin.total == pytest.approx(
        margin.residual + margin.query_rounding + margin.kernel_rounding + margin.shift_rounding, rel=1e-15
    )


def test_the_margin_covers_every_rows_prescan_error_measured_in_float64(spread):
    """Soundness, the certificate's premise: for every row, the pre-scan's score (integer dot product
    over b, plus the mean shift) is within the margin of the exact score, and FAISS's fp32 score of
    the exact one within the kernel term."""
    from probe_neighbours.prefilter import _flat_scores

    emb, queries = spread
    pre = Int8Prefilter.build(emb)
    codes = np.clip(np.rint((emb - pre.mean) * pre.scale), -127, 127).astype(np.float64)
    x = emb.astype(np.float64)
    for q in queries[:8]:
        q_int, b = pre.quantise_query(q)
        margin = pre.margin(q)
        exact = x @ q.astype(np.float64)
        prescan = codes @ q_int / b + float(q.astype(np.float64) @ pre.mean.astype(np.float64))
        assert np.abs(exact - prescan).max() <= margin.residual + margin.query_rounding + margin.shift_rounding
        assert np.abs(_flat_scores(emb, q) - exact).max() <= margin.kernel_rounding


def test_the_neighbours_page_states_the_limits_the_code_uses(monkeypatch):
    """The index's settings and the pre-scan's thresholds as the neighbours page gives them to users."""
    import dataclasses

    from probe_neighbours import index

    monkeypatch.undo()  # the shipped PREFILTER_AFTER, not this file's 0

    page = " ".join((Path(__file__).parents[2] / "docs" / "probes" / "neighbours.md").read_text().split())
    for claim in [
        f"fewer than {index.SINGLE_THREAD_BELOW} queries",
        f"flat index of {index.PREFILTER_MIN_ROWS:,} words or more",
        f"Its best {index.PREFILTER_CANDIDATES} rows are rescored",
        f"stops using it after {index.PREFILTER_TRIAL} tries",
        f"(`….{index.PREFILTER_SUFFIX.lstrip('.')}`",
        f"a process's first {index.PREFILTER_AFTER} small queries",
        f"Calls of {index.SINGLE_THREAD_BELOW} or more queries use the multi-threaded flat scan",
        f"up to {index.PREFILTER_MAX_DIM:,} dimensions",
        "`IndexHNSWFlat` (M={hnsw_m}, efConstruction={ef_construction}, efSearch={ef_search})".format(
            **dataclasses.asdict(index.IndexParams())
        ),
        f"against exact search on {index.RECALL_QUERIES} sampled words",
    ]:
        assert claim in page, claim


def test_the_dimension_limit_is_the_last_at_which_int8_sums_stay_exact_in_float32():
    """127 x 127 x D must stay below 2^24, float32's last exactly counted integer."""
    from probe_neighbours.index import PREFILTER_MAX_DIM

    assert 127**2 * PREFILTER_MAX_DIM < 2**24 <= 127**2 * (PREFILTER_MAX_DIM + 1)


def test_the_prescan_file_sits_beside_the_index_under_its_documented_name(spread, tmp_path):
    emb, queries = spread
    vocab_index(emb, tmp_path / "words.faiss").search(queries[:1], 10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["words.int8.npz"]


def test_the_prescan_serves_every_k_from_one_and_hands_on_at_least_four_k_rows(spread, tmp_path, monkeypatch):
    """k = 0 asks for nothing (and gets nothing, on any path); from k = 1 the pre-scan answers, its rerank
    taking the larger of PREFILTER_CANDIDATES rows and 4 k."""
    from probe_neighbours.index import PREFILTER_CANDIDATES

    emb, queries = spread
    index = vocab_index(emb, tmp_path / "v.faiss")
    scores, ids = index.search(queries[:1], 0)
    assert scores.shape == ids.shape == (1, 0) and index.prefilter_queries == 0
    asked: list[tuple[int, int]] = []
    real = Int8Prefilter.search_one

    def recorded(self, q, k, n):
        asked.append((k, n))
        return real(self, q, k, n)

    monkeypatch.setattr(Int8Prefilter, "search_one", recorded)
    for k in (1, PREFILTER_CANDIDATES // 4, PREFILTER_CANDIDATES // 4 + 1, 100):
        found = index.search(queries[:1], k)
        assert_same_answer(index, queries[:1], found, k)
    assert asked == [(1, 128), (32, 128), (33, 132), (100, 400)]


def test_the_prescan_is_used_up_to_its_dimension_limit_inclusive(spread, tmp_path, monkeypatch):
    from probe_neighbours import index as index_module

    emb, queries = spread
    for limit, used in [(emb.shape[1], True), (emb.shape[1] - 1, False)]:
        monkeypatch.setattr(index_module, "PREFILTER_MAX_DIM", limit)
        index = vocab_index(emb, tmp_path / f"{limit}.faiss")
        index.search(queries[:1], 10)
        assert (index.prefilter_queries == 1) is used, limit


@pytest.mark.parametrize(
    "queries, fallbacks, pays",
    [
        (15, 15, True),  # still on trial: however many fell back
        (16, 8, True),  # half fell back: still worth it
        (16, 9, False),  # more than half: stop
        (40, 20, True),
        (40, 21, False),
    ],
)
def test_after_its_trial_the_prescan_is_kept_while_at_most_half_its_queries_fall_back(
    spread, tmp_path, queries, fallbacks, pays
):
    from probe_neighbours.index import PREFILTER_TRIAL

    assert PREFILTER_TRIAL == 16  # the cases above are written around it
    emb, _ = spread
    index = vocab_index(emb, tmp_path / "v.faiss")
    index.small_queries, index.prefilter_queries, index.prefilter_fallbacks = 100, queries, fallbacks
    assert index._prefilter_pays() is pays


def test_an_index_prints_without_its_prescan_codes(spread, tmp_path):
    emb, queries = spread
    index = vocab_index(emb, tmp_path / "v.faiss")
    index.search(queries[:1], 10)
    assert index.prefilter is not None and "prefilter=" not in repr(index)


def test_a_second_process_loads_the_saved_prescan_instead_of_building_it(spread, tmp_path, monkeypatch):
    emb, queries = spread
    path = tmp_path / "v.faiss"
    first = vocab_index(emb, path)
    first.search(queries[:1], 10)
    monkeypatch.setattr(Int8Prefilter, "build", lambda rows: pytest.fail("built again"))
    second = vocab_index(emb, path)
    found = second.search(queries[:3], 10)
    assert second.prefilter is not None and second.prefilter.bound == first.prefilter.bound
    assert_same_answer(second, queries[:3], found, 10)
