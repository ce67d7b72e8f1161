"""Nearest vocabulary words of texts and images, flagged marking, and flagged-word rates per group.

The audit (`probe nsfw`) calls these with its own session; pass `indexes=` (from `open_indexes`)
to reuse loaded indexes across many calls instead of reading them from the cache each time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from probe.plugin import DataError
from probe_neighbours.index import IndexParams, Progress, VocabIndex, open_index
from probe_neighbours.vocabularies import flag_categories, load_vocab

if TYPE_CHECKING:
    from probe.plugin import Session, Vocabulary

IMAGE_BATCH = 64


@dataclass
class Neighbour:
    word: str
    score: float  # cosine between the query's and the word's normalised embeddings
    vocab: str
    flagged: bool
    category: str | None


@dataclass
class NeighbourResult:
    query: str
    neighbours: list[Neighbour]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FlagRate:
    """Share of each query's top-k that is flagged, and over all queries (flagged / total)."""

    per_query: dict[str, float]
    overall: float
    k: int
    flagged: int = 0
    total: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def open_indexes(
    session: Session,
    vocabs: list[str],
    params: IndexParams | None = None,
    rebuild: bool = False,
    progress: Progress | None = None,
) -> list[VocabIndex]:
    """Load (or build) the index of each named vocabulary or word-list file for the session's model."""
    return [open_index(session, load_vocab(name), params, rebuild, progress) for name in dict.fromkeys(vocabs)]


def search_embeddings(
    embeddings: np.ndarray, names: list[str], indexes: list[VocabIndex], k: int = 10
) -> list[NeighbourResult]:
    """Top-k words over all indexes for each query embedding; a word in several lists counts once."""
    flags = flag_categories([ix.vocab for ix in indexes])
    hits: list[dict[str, Neighbour]] = [{} for _ in names]
    for ix in indexes:
        scores, ids = ix.search(embeddings, k)
        for row, (row_scores, row_ids) in enumerate(zip(scores.tolist(), ids.tolist(), strict=True)):
            seen = hits[row]
            for score, i in zip(row_scores, row_ids, strict=True):
                if i < 0:  # FAISS pads with -1 when fewer than k were found
                    continue
                word = ix.vocab.words[i]
                if word in seen and seen[word].score >= score:
                    continue
                category = ix.vocab.category(word) or flags.get(word.casefold())
                seen[word] = Neighbour(word, float(score), ix.vocab.name, category is not None, category)
    results = []
    for name, seen in zip(names, hits, strict=True):
        ranked = sorted(seen.values(), key=lambda n: (-n.score, n.word))[:k]
        results.append(NeighbourResult(name, ranked))
    return results


def text_neighbours(
    session: Session,
    texts: list[str],
    vocabs: list[str],
    k: int = 10,
    *,
    indexes: list[VocabIndex] | None = None,
    truncate: bool = False,
) -> list[NeighbourResult]:
    """Nearest vocabulary words of each text, all texts encoded in one batch."""
    indexes = indexes if indexes is not None else open_indexes(session, vocabs)
    embeddings = session.encode_text(list(texts), truncate=truncate).numpy()
    return search_embeddings(embeddings, list(texts), indexes, k)


def image_neighbours(
    session: Session,
    images: torch.Tensor,
    names: list[str],
    vocabs: list[str],
    k: int = 10,
    *,
    indexes: list[VocabIndex] | None = None,
) -> list[NeighbourResult]:
    """Nearest vocabulary words of each image ([B,3,H,W] in [0,1], any size), encoded in batches."""
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if len(names) != images.shape[0]:
        raise ValueError(f"{len(names)} names for {images.shape[0]} images")
    indexes = indexes if indexes is not None else open_indexes(session, vocabs)
    if images.shape[0] == 0:
        return []  # FAISS refuses an empty batch of the wrong width, and the width is known only from an image
    with torch.no_grad():
        parts = [
            session.encode_image(images[i : i + IMAGE_BATCH]).cpu() for i in range(0, images.shape[0], IMAGE_BATCH)
        ]
    return search_embeddings(torch.cat(parts).numpy(), list(names), indexes, k)


def flag_rate(results: list[NeighbourResult]) -> FlagRate:
    """The share of flagged words among each result's neighbours, and pooled over all results."""
    per_query: dict[str, float] = {}
    flagged = total = 0
    for result in results:
        n_flagged = sum(n.flagged for n in result.neighbours)
        per_query[result.query] = n_flagged / len(result.neighbours) if result.neighbours else 0.0
        flagged += n_flagged
        total += len(result.neighbours)
    k = max((len(r.neighbours) for r in results), default=0)
    return FlagRate(per_query, flagged / total if total else 0.0, k, flagged, total)


def flag_rate_caveat(vocabs: list[Vocabulary]) -> str | None:
    """Why a flag rate says nothing, if it cannot: no word of the vocabularies is flagged (every rate is
    0%), or every word is (every rate is 100%), whatever the model does."""
    words = sum(len(v.words) for v in vocabs)
    flagged = sum(sum(1 for w in v.words if v.is_flagged(w)) for v in vocabs)
    names = ", ".join(v.name for v in vocabs)
    if flagged == 0:
        return (
            f"no word of the vocabulary ({names}) is flagged: every flag rate is 0% by construction "
            "(add --vocab flagged to measure one)"
        )
    if flagged == words:
        return f"every word of the vocabulary ({names}) is flagged: every flag rate is 100% by construction"
    return None


@dataclass
class ImageProvenance:
    """What an image's sidecar (e.g. from `probe invert`) says about the model that made it."""

    path: Path
    model: str | None = None
    fingerprint: str | None = None
    extra: dict = field(default_factory=dict)


def _sidecar_candidates(path: Path) -> list[Path]:
    return [path.with_name(path.name + ".json"), path.with_suffix(".json")]


def _model_fields(meta: dict) -> tuple[str | None, str | None]:
    """(model name, fingerprint) from a sidecar dict; `model` may be a name or session.describe()."""
    model = meta.get("model")
    fingerprint = meta.get("fingerprint")
    if isinstance(model, dict):
        fingerprint = fingerprint or model.get("fingerprint")
        model = model.get("model") or model.get("name")
    return (str(model) if model else None), (str(fingerprint) if fingerprint else None)


def _png_metadata(path: Path) -> dict:
    """Text chunks of a PNG (JSON values decoded), where probe writes image metadata."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            chunks = dict(getattr(im, "text", {}) or {})
    except (OSError, Image.DecompressionBombError):
        return {}
    meta = {}
    for key, value in chunks.items():
        try:
            meta[key] = json.loads(value)
        except ValueError:
            meta[key] = value
    return meta


def image_provenance(path: Path) -> ImageProvenance:
    """Read the JSON sidecar (IMAGE.json or IMAGE.png.json) or PNG text chunks of an image, if any."""
    path = Path(path)
    for candidate in _sidecar_candidates(path):
        if candidate.is_file() and candidate != path:
            from probe.plugin import read_json

            meta = read_json(candidate)
            if isinstance(meta, dict):
                model, fingerprint = _model_fields(meta)
                if model or fingerprint:
                    return ImageProvenance(path, model, fingerprint, {"sidecar": str(candidate)})
    meta = _png_metadata(path) if path.suffix.lower() == ".png" else {}
    model, fingerprint = _model_fields(meta)
    return ImageProvenance(path, model, fingerprint, {"sidecar": "png text"} if model or fingerprint else {})


def check_image_model(session: Session, provenance: ImageProvenance) -> None:
    """An image inverted with another model says nothing about this one's embedding space: refuse it."""
    if provenance.fingerprint and provenance.fingerprint != session.fingerprint:
        mismatch = f"fingerprint {provenance.fingerprint}, the loaded model has {session.fingerprint}"
    elif not provenance.fingerprint and provenance.model and provenance.model != session.name:
        mismatch = f"the loaded model is {session.name}"
    else:
        return
    made_with = provenance.model or "another model"
    raise DataError(
        f"{provenance.path} was made with model {made_with} ({mismatch}; per {provenance.extra.get('sidecar')})",
        hint=f"rerun with --model {provenance.model}" if provenance.model else "use the model that made the image",
    )


def load_query_images(session: Session, paths: list[Path]) -> torch.Tensor:
    """Images checked against their sidecars and preprocessed as the model's own pipeline does, as
    one batch [B,3,S,S] in [0,1]."""
    from probe.plugin import load_photo

    batch = []
    for path in paths:
        check_image_model(session, image_provenance(Path(path)))
        batch.append(session.prepare(load_photo(Path(path))).cpu())
    return torch.cat(batch) if batch else torch.empty(0, 3, session.image_size, session.image_size)
