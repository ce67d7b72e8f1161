"""A torch-free stand-in for a Session's text side: deterministic embeddings from word hashes.

Used where a test exercises index caching and locking in subprocesses, which would otherwise spend
their time importing torch and open_clip.
"""

from __future__ import annotations

import hashlib

import numpy as np


class Embeddings:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def numpy(self) -> np.ndarray:
        return self.array


class FakeTextSession:
    name = "fake"
    fingerprint = "fake-model-1"
    embed_dim = 8

    def encode_text(self, texts: list[str], truncate: bool = False) -> Embeddings:
        rows = [
            np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).standard_normal(self.embed_dim)
            for t in texts
        ]
        a = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.embed_dim)
        return Embeddings(a / np.linalg.norm(a, axis=1, keepdims=True))
