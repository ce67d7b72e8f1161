"""Exact top-k at a quarter of the memory traffic: an int8 pre-scan whose error is bounded, then an
fp32 rerank of its candidates, certified against that bound.

A single query over a flat fp32 index reads every embedding (50k x 512 = 100 MB), so it is bound by
memory bandwidth. Here the scan reads int8 codes instead. Each embedding x is stored as
c = round(a * (x - mu)) (mean-centred, per-dimension scale a), so for a query q

    q.x = q.mu + (q / a).c + q.r,    |q.r| <= |q| * R,    R = max over rows of |x - mu - c / a|,

and FAISS takes (q / a).c with the query rounded to int8 as well, which adds a second bounded term.

The pre-scan returns the k' rows with the best approximate scores, and FAISS's own flat kernel
rescores them, so their scores match a one-thread flat scan bit for bit. Every other row scores at
most (k'-th approximate score) + both error terms + rounding slack. When that bound is below the
k-th rescored score, the candidates hold the true top k, which is the flat scan's answer (among
words tied at the k-th score it keeps the lowest ids, where FAISS's heap may keep others: both are
the top k). Otherwise (scores crowded within the bound) the query falls back to the flat scan.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

if TYPE_CHECKING:
    import faiss

PREFILTER_FORMAT = 2
INT8_MAX = 127.0
FP32_EPS = float(np.finfo(np.float32).eps)


@dataclass
class Int8Prefilter:
    """The int8 codes of a flat index's embeddings, their mean and scales, and the error bound R."""

    codes: faiss.IndexScalarQuantizer
    embeddings: np.ndarray  # fp32 [N, D], the flat index's own rows (rescoring)
    mean: np.ndarray  # fp32 [D]
    scale: np.ndarray  # fp32 [D], a
    bound: float  # R, in embedding units
    code_norm: float  # max row norm of c, for the query-rounding term
    row_norm: float  # max row norm of the embeddings, for the fp32 rounding slack

    @classmethod
    def build(cls, embeddings: np.ndarray) -> Int8Prefilter:
        """Quantise rows to int8 per dimension around their mean and measure the bound R."""
        import faiss

        emb = np.ascontiguousarray(embeddings, dtype=np.float32)
        mean = emb.mean(axis=0, dtype=np.float64).astype(np.float32)
        centred = emb - mean
        span = np.abs(centred).max(axis=0)
        scale = (INT8_MAX / np.where(span > 0, span, 1.0)).astype(np.float32)
        codes = np.clip(np.rint(centred * scale), -INT8_MAX, INT8_MAX).astype(np.float32)
        residual = centred - codes / scale
        # fp32 residuals (float64 would take seconds at 50k x 512), widened by their rounding error
        bound = float(np.sqrt(np.einsum("ij,ij->i", residual, residual).max())) + emb.shape[1] * FP32_EPS * float(
            span.max()
        )
        index = faiss.IndexScalarQuantizer(
            emb.shape[1], faiss.ScalarQuantizer.QT_8bit_direct_signed, faiss.METRIC_INNER_PRODUCT
        )
        index.train(codes)
        index.add(codes)
        code_norm = float(np.sqrt(np.einsum("ij,ij->i", codes, codes).max()))  # integer sums: exact in fp32
        row_norm = float(np.sqrt(np.einsum("ij,ij->i", emb, emb).max())) * (1 + 1e-6)
        return cls(index, emb, mean, scale, bound, code_norm, row_norm)

    def save(self, path: Path, source_sha256: str) -> None:
        """Write the codes and bounds atomically, tagged with the sha256 of the index they derive from."""
        import faiss

        from probe.plugin import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(
            buf,
            format=np.int64(PREFILTER_FORMAT),
            source=np.str_(source_sha256),
            codes=faiss.serialize_index(self.codes),
            mean=self.mean,
            scale=self.scale,
            bound=np.float64(self.bound),
            code_norm=np.float64(self.code_norm),
            row_norm=np.float64(self.row_norm),
        )
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: Path, embeddings: np.ndarray, source_sha256: str) -> Int8Prefilter | None:
        """The saved pre-scan if it is intact and derives from this index, else None (build a new one)."""
        import faiss

        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != PREFILTER_FORMAT or str(data["source"]) != source_sha256:
                    return None
                codes = cast("faiss.IndexScalarQuantizer", faiss.deserialize_index(data["codes"]))  # as saved
                mean, scale = data["mean"], data["scale"]
                bound, code_norm, row_norm = float(data["bound"]), float(data["code_norm"]), float(data["row_norm"])
        except (OSError, ValueError, KeyError, RuntimeError, EOFError, zipfile.BadZipFile):
            return None
        if (
            codes.ntotal != embeddings.shape[0]
            or codes.d != embeddings.shape[1]
            or mean.shape != (codes.d,)
            or scale.shape != (codes.d,)
        ):
            return None
        return cls(codes, embeddings, mean, scale, bound, code_norm, row_norm)

    def quantise_query(self, query: np.ndarray) -> tuple[np.ndarray, float]:
        """(q_int, b): the query as FAISS's int8 kernel takes it, q / a scaled by b to fill the int8
        range and rounded, so (q_int / b).c approximates (q / a).c with exact integer sums."""
        q_scaled = np.asarray(query, dtype=np.float64) / self.scale
        peak = float(np.abs(q_scaled).max())
        b = INT8_MAX / peak if peak > 0 else 1.0
        return np.rint(q_scaled * b), b

    def margin(self, query: np.ndarray) -> Margin:
        """How far, at most, a row's pre-scan score q.mu + (q_int / b).c lies from its exact score q.x,
        term by term."""
        return self._margin(np.asarray(query, dtype=np.float64), *self.quantise_query(query))

    def _margin(self, q64: np.ndarray, q_int: np.ndarray, b: float) -> Margin:
        q_norm = float(np.linalg.norm(q64))
        dim = self.embeddings.shape[1]
        return Margin(
            residual=q_norm * self.bound,
            query_rounding=float(np.linalg.norm(q64 / self.scale - q_int / b)) * self.code_norm,
            kernel_rounding=1.01 * dim * FP32_EPS * q_norm * self.row_norm,
            shift_rounding=2 * dim * FP32_EPS * abs(float(q64 @ self.mean)),
        )

    def search_one(self, query: np.ndarray, k: int, candidates: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(scores [k], ids [k]) as a one-thread flat scan gives them (its own kernel rescores the
        candidates; equal scores: lowest id first), or None when the bound cannot certify them from
        `candidates` pre-scan rows (the caller then scans the flat index). Run with FAISS on one
        thread, as VocabIndex does: a multi-threaded flat scan sums in another order."""
        q = np.asarray(query, dtype=np.float32)
        q_int, b = self.quantise_query(q)
        dots, ids = self.codes.search(q_int[None, :].astype(np.float32), candidates)
        ids = ids[0]
        exact = _flat_scores(self.embeddings[ids], q)
        order = np.lexsort((ids, -exact))
        if candidates < self.embeddings.shape[0]:
            q64 = q.astype(np.float64)
            margin = self._margin(q64, q_int, b)
            outside = float(dots[0, -1]) / b + float(q64 @ self.mean) + margin.total
            # both sides are FAISS's own numbers; the kernel term on this side too guards only a mismatch
            if not outside < float(exact[order[k - 1]]) - margin.kernel_rounding:
                return None
        order = order[:k]
        return exact[order], ids[order]


@dataclass(frozen=True)
class Margin:
    """The terms of the certificate's bound for one query (the module docstring derives them)."""

    residual: float  # |q| R: what the int8 codes lose of each row
    query_rounding: float  # |q / a - q_int / b| max|c|: the query rounded for the int8 kernel
    kernel_rounding: float  # 1.01 D eps |q| max|x|: fp32 dot products summed in any order
    shift_rounding: float  # 2 D eps |q.mu|: the mean shift q.mu taken in fp32

    @property
    def total(self) -> float:
        return self.residual + self.query_rounding + self.kernel_rounding + self.shift_rounding


def _flat_scores(rows: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Inner products computed by FAISS's own flat kernel, so they equal, bit for bit, the scores a
    one-thread flat scan gives these rows (numpy's BLAS sums in another order and can reorder near-ties)."""
    import faiss

    sub = faiss.IndexFlatIP(rows.shape[1])
    sub.add(rows)
    scores, local = sub.search(query[None, :], rows.shape[0])
    out = np.empty(rows.shape[0], np.float32)
    out[local[0]] = scores[0]
    return out
