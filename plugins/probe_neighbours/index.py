"""FAISS indexes of vocabulary embeddings: build (exact fast text encoding), cache, validate, search.

An index is cached under `cache_path("indexes", ...)`, keyed by model fingerprint + vocabulary hash +
index parameters, with a JSON sidecar recording what it holds and the index file's sha256. Builds
run under a cross-process lock and write atomically (index first, sidecar last), so concurrent
builders leave one valid index and a reader never trusts a half-written or stale file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from probe.files.cache import cache_path
from probe.plugin import (
    DataError,
    ProbeError,
    UsageError,
    atomic_write_bytes,
    content_hash,
    file_lock,
    safe_name,
    tokenizer_fingerprint,
    write_json,
)
from probe_neighbours.vocabularies import Vocabulary

if TYPE_CHECKING:
    import faiss

    from probe.plugin import Session

INDEX_FORMAT = 1
INDEX_KINDS = ("flat", "hnsw")
RECALL_QUERIES = 256
SINGLE_THREAD_BELOW = 20  # queries per call under which FAISS runs faster on one OpenMP thread
LOCK_TIMEOUT_S = 3600.0

Progress = Callable[[int], None]


@dataclass(frozen=True)
class IndexParams:
    """flat = exact inner product (IndexFlatIP); hnsw = approximate graph search for very large lists."""

    kind: str = "flat"
    hnsw_m: int = 32
    ef_construction: int = 200
    ef_search: int = 256

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise UsageError(f"unknown index kind {self.kind!r}", hint=f"use one of {', '.join(INDEX_KINDS)}")

    def as_dict(self) -> dict:
        """The parameters the index depends on (HNSW settings only matter for hnsw)."""
        return {"kind": "flat"} if self.kind == "flat" else asdict(self)


@dataclass
class VocabIndex:
    """A loaded index over one vocabulary; `status` is cached, built or rebuilt, `message` says why."""

    vocab: Vocabulary
    index: faiss.Index
    params: IndexParams
    path: Path
    status: str
    message: str | None = None
    recall_at_10: float | None = None
    build_seconds: float | None = None
    index_sha256: str | None = None  # of the cached index file, as its sidecar records it

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores [Q,k'], ids [Q,k']) of the k nearest words by cosine, k' = min(k, vocabulary size).

        Exact for a flat index. A few queries run FAISS on one thread (faster than its thread pool for
        them), many queries one multi-threaded scan. Words with equal scores come lowest id first.
        (Which of several words tied exactly at the k-th score make the cut is FAISS's heap's choice.)
        """
        k = min(k, self.index.ntotal)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if k <= 0:  # nothing asked for (or an empty vocabulary): FAISS itself refuses k = 0
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        with faiss_threads(1 if len(queries) < SINGLE_THREAD_BELOW else None):
            return ties_by_id(*self.index.search(queries, k))


def ties_by_id(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row ordered by score, equal scores lowest id first (FAISS's own order among ties depends on
    its heap and thread count)."""
    order = np.lexsort((ids, -scores), axis=-1)
    return np.take_along_axis(scores, order, axis=-1), np.take_along_axis(ids, order, axis=-1)


@contextmanager
def faiss_threads(n: int | None) -> Iterator[None]:
    """Run FAISS on n OpenMP threads inside the block (None: leave as is), then restore.

    A single query scans the index on one thread anyway; more threads only add OpenMP start-up
    and spinning (measured: 4.9 ms vs 9.1 ms per query on 2 cores, 50k x 512 flat).
    """
    import faiss

    if n is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class _BadCache(Exception):
    """Why a cached index cannot be used (turned into a rebuild message)."""


def embed_words(
    session: Session, words: list[str], batch_size: int = 2048, progress: Progress | None = None, vocab_name: str = ""
) -> np.ndarray:
    """Normalised fp32 embeddings [N, D] via the session's exact fast text path, chunked for progress."""
    chunks = []
    if progress:
        progress(0)
    for start in range(0, len(words), batch_size):
        chunk = words[start : start + batch_size]
        try:
            emb = session.encode_text(chunk)
        except UsageError as exc:  # too long for the model's context
            raise DataError(f"vocabulary {vocab_name}: {exc.args[0]}", hint="shorten or remove those lines") from exc
        chunks.append(emb.numpy().astype(np.float32, copy=False))
        if progress:
            progress(len(chunk))
    return np.concatenate(chunks) if chunks else np.empty((0, session.embed_dim), np.float32)


def make_index(embeddings: np.ndarray, params: IndexParams) -> faiss.Index:
    """A FAISS inner-product index over (already normalised) embeddings."""
    import faiss

    dim = embeddings.shape[1]
    index: faiss.Index
    if params.kind == "flat":
        index = faiss.IndexFlatIP(dim)
    else:
        hnsw = faiss.IndexHNSWFlat(dim, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = params.ef_construction
        hnsw.hnsw.efSearch = params.ef_search
        index = hnsw
    index.add(np.ascontiguousarray(embeddings, dtype=np.float32))
    return index


def exact_top_k(embeddings: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Ids of the exact top-k by inner product (numpy), the reference for recall."""
    scores = queries @ embeddings.T
    k = min(k, embeddings.shape[0])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def recall_at_k(index: faiss.Index, embeddings: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    """Share of the exact top-k that the index returns (1.0 for an exact index)."""
    k = min(k, embeddings.shape[0])
    exact = exact_top_k(embeddings, queries, k)
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    hits = sum(len(set(e.tolist()) & set(f.tolist())) for e, f in zip(exact, found, strict=True))
    return hits / (k * len(queries))


def sample_recall(
    index: faiss.Index, embeddings: np.ndarray, k: int = 10, n: int = RECALL_QUERIES, seed: int = 0
) -> float:
    """recall@k of an approximate index, with n vocabulary embeddings (seeded sample) as queries."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(embeddings.shape[0], size=min(n, embeddings.shape[0]), replace=False)
    return recall_at_k(index, embeddings, embeddings[pick], k)


def index_paths(session: Session, vocab: Vocabulary, params: IndexParams) -> tuple[Path, Path]:
    """(index file, JSON sidecar) in the cache; the name says vocab, kind and model, the key all inputs
    (the tokenizer's content too: the same weights with another tokenizer embed other words)."""
    key = content_hash(
        session.fingerprint,
        tokenizer_fingerprint(getattr(session, "tokenizer", None)),
        vocab.content_hash,
        json.dumps(params.as_dict(), sort_keys=True),
        str(INDEX_FORMAT),
    )
    stem = cache_path("indexes", f"{_family(session, vocab, params)}{key[:20]}")
    return stem.with_name(f"{stem.name}.faiss"), stem.with_name(f"{stem.name}.json")


def _family(session: Session, vocab: Vocabulary, params: IndexParams) -> str:
    """File-name prefix shared by every version of one vocabulary's index for one model and kind."""
    return f"{safe_name(Path(vocab.name).name, 40)}.{params.kind}.{content_hash(session.fingerprint)[:10]}."


def _expected_sidecar(session: Session, vocab: Vocabulary, params: IndexParams) -> dict:
    return {
        "format": INDEX_FORMAT,
        "fingerprint": session.fingerprint,
        "vocab_hash": vocab.content_hash,
        "count": len(vocab.words),
        "params": params.as_dict(),
    }


def _read_cached(index_path: Path, sidecar_path: Path, expected: dict) -> tuple[faiss.Index, dict]:
    """The cached index if its sidecar matches what we need and its bytes are intact, else _BadCache."""
    import faiss

    if not sidecar_path.exists() and not index_path.exists():
        raise FileNotFoundError(index_path)
    try:
        meta = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _BadCache("sidecar missing") from exc
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _BadCache("sidecar unreadable") from exc
    if not isinstance(meta, dict):
        raise _BadCache("sidecar unreadable")
    stale = [k for k, v in expected.items() if meta.get(k) != v]
    if stale:
        raise _BadCache(f"stale: {', '.join(stale)} changed")
    try:
        data = index_path.read_bytes()
    except FileNotFoundError as exc:
        raise _BadCache("index file missing") from exc
    except OSError as exc:  # e.g. a folder where the file should be
        raise _BadCache(f"index file unreadable ({exc.strerror or exc})") from exc
    if len(data) != meta.get("index_bytes") or hashlib.sha256(data).hexdigest() != meta.get("index_sha256"):
        raise _BadCache("index file truncated or modified (size/sha256 mismatch)")
    try:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise _BadCache("index file unreadable by FAISS") from exc
    if index.ntotal != expected["count"] or index.d != meta.get("dim"):
        raise _BadCache("index size does not match the vocabulary")
    return index, meta


def _write_cached(index: faiss.Index, index_path: Path, sidecar_path: Path, meta: dict) -> dict:
    """Index first, sidecar (with the index's sha256) last: a crash between them reads as 'stale'."""
    import faiss

    data = faiss.serialize_index(index).tobytes()
    atomic_write_bytes(index_path, data)
    meta = {**meta, "index_bytes": len(data), "index_sha256": hashlib.sha256(data).hexdigest()}
    write_json(sidecar_path, meta)
    return meta


def _prune_family(index_path: Path, family: str) -> None:
    """Remove older versions of the same vocabulary's index for this model (the vocab file changed), with
    the `.int8.npz` codes that earlier versions' int8 pre-scan saved beside them."""
    for old in index_path.parent.glob(f"{family}*"):
        if not old.name.startswith(index_path.stem + ".") and old.suffix in (".faiss", ".json", ".npz"):
            old.unlink(missing_ok=True)


def open_index(
    session: Session,
    vocab: Vocabulary,
    params: IndexParams | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
    batch_size: int = 2048,
) -> VocabIndex:
    """Load the cached index of `vocab` for the session's model, or build and cache it.

    A missing index is built; a corrupt or stale one is rebuilt with a `message` saying why.
    `progress(n)` is called with the number of words just embedded while building.
    """
    from filelock import Timeout

    params = params or IndexParams()
    index_path, sidecar_path = index_paths(session, vocab, params)
    expected = _expected_sidecar(session, vocab, params)
    try:
        with file_lock(index_path, timeout=LOCK_TIMEOUT_S):
            return _load_or_build(
                session, vocab, params, index_path, sidecar_path, expected, rebuild, progress, batch_size
            )
    except Timeout as exc:
        raise ProbeError(
            f"timed out waiting for another process building {index_path.name}", hint="retry when it finishes"
        ) from exc


def _load_or_build(
    session, vocab, params, index_path, sidecar_path, expected, rebuild, progress, batch_size
) -> VocabIndex:
    status, message = "built", None
    if rebuild:
        status, message = "rebuilt", f"rebuilt the {params.kind} index of {vocab.name!r} (--rebuild)"
    else:
        try:
            index, meta = _read_cached(index_path, sidecar_path, expected)  # HNSW's efSearch is saved with it
            return VocabIndex(
                vocab,
                index,
                params,
                index_path,
                "cached",
                None,
                meta.get("recall_at_10"),
                meta.get("build_seconds"),
                meta.get("index_sha256"),
            )
        except FileNotFoundError:
            pass
        except _BadCache as why:
            status, message = "rebuilt", f"the cached index of {vocab.name!r} was unusable ({why}); rebuilt it"
    t0 = time.perf_counter()
    embeddings = embed_words(session, vocab.words, batch_size, progress, vocab.name)
    index = make_index(embeddings, params)
    recall = 1.0 if params.kind == "flat" else sample_recall(index, embeddings)
    seconds = time.perf_counter() - t0
    meta = {
        **expected,
        "dim": int(embeddings.shape[1]),
        "model": session.name,
        "vocab": vocab.name,
        "vocab_source": vocab.source,
        "recall_at_10": recall,
        "build_seconds": round(seconds, 3),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    meta = _write_cached(index, index_path, sidecar_path, meta)
    _prune_family(index_path, _family(session, vocab, params))
    if message is None:
        message = f"built the {params.kind} index of {vocab.name!r}: {len(vocab.words):,} words in {seconds:.1f} s"
    if params.kind != "flat":
        message += f"; recall@10 vs exact on {min(RECALL_QUERIES, len(vocab.words))} sampled words: {recall:.3f}"
    return VocabIndex(vocab, index, params, index_path, status, message, recall, seconds, meta["index_sha256"])
