"""Scores of captions against their perturbations: text-only and image–text, ARO-style summaries.

Text only: score(p') = cos(T(p), T(p')), so the original scores cos(T(p), T(p)) = 1.
Image–text: score(p') = cos(V(x), T(p')) against the original's cos(V(x), T(p)).
Every distinct text (originals and all variants) goes through ONE `session.encode_text` call, so
the exact fast path buckets them by length; images are encoded in batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch

from probe.plugin import UsageError
from probe_shuffle.perturbations import Tagger, check_names, perturb

# Scores this close to the original's count as ties (fp32 noise); a tie is "order blind".
TIE_TOLERANCE = 1e-6
ALL_ROW = "all"


class Encoder(Protocol):
    """What scoring needs from a Session (tests may pass a stand-in)."""

    def encode_text(self, texts: list[str], batch_size: int = 256, truncate: bool = False) -> torch.Tensor: ...

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...

    def prepare(self, image: Any) -> torch.Tensor: ...


@dataclass
class VariantScore:
    """One perturbed caption and its score; delta = score − original score."""

    perturbation: str
    text: str
    score: float
    delta: float


@dataclass
class ItemResult:
    """One prompt (text mode) or image–caption pair (image mode) with all its perturbations."""

    index: int
    name: str
    caption: str
    original_score: float
    variants: list[VariantScore] = field(default_factory=list)


@dataclass
class PerturbationRow:
    """Summary of one perturbation type; metrics are None when it applied to no caption.

    order_blindness: share of perturbed captions scoring at least the original's score.
    precision_at_1: share of captions whose original beats all their perturbations of this type.
    """

    name: str
    n: int
    n_items: int
    mean_score: float | None
    mean_delta: float | None
    std_delta: float | None
    order_blindness: float | None
    precision_at_1: float | None


@dataclass
class ShuffleReport:
    """Per-type rows (plus an 'all' row over every perturbation of a caption) and per-item details."""

    mode: str
    seed: int
    n_variants: int
    perturbations: list[str]
    rows: list[PerturbationRow]
    items: list[ItemResult]

    def row(self, name: str) -> PerturbationRow:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    def variant_rows(self) -> list[dict[str, Any]]:
        """One flat record per perturbed caption (for CSV): item, caption, original score, variant, score, delta."""
        return [
            {
                "item": item.name,
                "caption": item.caption,
                "original_score": item.original_score,
                "perturbation": v.perturbation,
                "variant": v.text,
                "score": v.score,
                "delta": v.delta,
            }
            for item in self.items
            for v in item.variants
        ]

    def summary_table(self, title: str) -> tuple[str, list[str], list[list[str]]]:
        """(title, columns, rows) of the summary as `probe shuffle-test` prints it."""
        from probe_shuffle.summary import summary_table

        return summary_table(self, title)

    def notes(self) -> list[str]:
        """The notes `probe shuffle-test` prints under the summary (what '—' and left-out metrics mean)."""
        from probe_shuffle.summary import summary_notes

        return summary_notes(self)

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if not details:
            data.pop("items")
        return data

    def _repr_html_(self) -> str:
        from probe.plugin import html_table

        def fmt(v: float | None, pct: bool = False) -> str:
            return "—" if v is None else (f"{v:.1%}" if pct else f"{v:+.4f}")

        rows = [
            [r.name, r.n_items, r.n, fmt(r.mean_delta), fmt(r.order_blindness, True), fmt(r.precision_at_1, True)]
            for r in self.rows
        ]
        return html_table(
            ["perturbation", "captions", "variants", "mean Δ", "order blindness", "P@1"],
            rows,
            f"Shuffle test ({self.mode} mode, seed {self.seed})",
        )


def encode_images(session: Encoder, images: torch.Tensor | Sequence[Any], batch_size: int = 256) -> torch.Tensor:
    """Normalised image embeddings [B, D] on CPU. A list holds photos (PIL images: the model's own
    preprocessing) or any-size [3,H,W] tensors (resized), each prepared first."""
    if not isinstance(images, torch.Tensor):
        images = torch.cat([session.prepare(im) for im in images]) if len(images) else torch.empty(0, 3, 1, 1)
    if images.dim() == 3:
        images = images.unsqueeze(0)
    parts = [
        session.encode_image(images[i : i + batch_size]).float().cpu() for i in range(0, images.shape[0], batch_size)
    ]
    return torch.cat(parts) if parts else torch.empty(0, 0)


def _unique_texts(
    captions: Sequence[str], variants: Sequence[dict[str, list[str]]]
) -> tuple[list[str], dict[str, int]]:
    """Every distinct text once (originals first), with its row in the embedding matrix."""
    index: dict[str, int] = {}
    for text in [*captions, *(t for v in variants for texts in v.values() for t in texts)]:
        index.setdefault(text, len(index))
    return list(index), index


def _summary(
    name: str, item: torch.Tensor, delta: torch.Tensor, score: torch.Tensor, n_items_total: int
) -> PerturbationRow:
    """Row metrics from flat per-variant tensors (item index, delta, score) of one type (or all)."""
    if item.numel() == 0:
        return PerturbationRow(name, 0, 0, None, None, None, None, None)
    blind = delta >= -TIE_TOLERANCE
    has = torch.zeros(n_items_total).index_add_(0, item, torch.ones_like(delta))
    blind_count = torch.zeros(n_items_total).index_add_(0, item, blind.float())
    applied = has > 0
    beats = applied & (blind_count == 0)
    std = delta.std().item() if delta.numel() > 1 else 0.0
    return PerturbationRow(
        name=name,
        n=int(delta.numel()),
        n_items=int(applied.sum()),
        mean_score=score.mean().item(),
        mean_delta=delta.mean().item(),
        std_delta=std,
        order_blindness=blind.float().mean().item(),
        precision_at_1=(beats.sum() / applied.sum()).item(),
    )


def score_report(
    mode: str,
    anchors: torch.Tensor,
    text_emb: torch.Tensor,
    index: dict[str, int],
    captions: Sequence[str],
    variants: Sequence[dict[str, list[str]]],
    perturbations: list[str],
    seed: int,
    n_variants: int,
    item_names: Sequence[str] | None = None,
) -> ShuffleReport:
    """Score every variant against its item's anchor (T(p) or V(x)) and summarise per type."""
    item_idx, type_idx, text_idx, texts = [], [], [], []
    for i, per_type in enumerate(variants):
        for t, name in enumerate(perturbations):
            for text in per_type.get(name, []):
                item_idx.append(i)
                type_idx.append(t)
                text_idx.append(index[text])
                texts.append(text)
    item = torch.tensor(item_idx, dtype=torch.long)
    kind = torch.tensor(type_idx, dtype=torch.long)
    original = (anchors * text_emb[[index[c] for c in captions]]).sum(1)
    score = (anchors[item] * text_emb[torch.tensor(text_idx, dtype=torch.long)]).sum(1) if item_idx else torch.empty(0)
    delta = score - original[item] if item_idx else torch.empty(0)
    rows = [
        _summary(name, item[kind == t], delta[kind == t], score[kind == t], len(captions))
        for t, name in enumerate(perturbations)
    ]
    rows.append(_summary(ALL_ROW, item, delta, score, len(captions)))
    item_names = list(item_names) if item_names is not None else [f"{mode} {i + 1}" for i in range(len(captions))]
    items = [
        ItemResult(i, item_names[i], c, o) for i, (c, o) in enumerate(zip(captions, original.tolist(), strict=True))
    ]
    for i, t, text, s, d in zip(item_idx, type_idx, texts, score.tolist(), delta.tolist(), strict=True):
        items[i].variants.append(VariantScore(perturbations[t], text, s, d))
    return ShuffleReport(mode, seed, n_variants, list(perturbations), rows, items)


def text_shuffle_test(
    session: Encoder,
    prompts: list[str],
    perturbations: list[str],
    seed: int = 0,
    n_variants: int = 1,
    tagger: Tagger | None = None,
    truncate: bool = False,
    batch_size: int = 256,
) -> ShuffleReport:
    """cos(T(p), T(p')) for each perturbation p' of each prompt p, all texts encoded in one batched call."""
    perturbations = check_names(perturbations)
    if not prompts:
        raise UsageError("no prompts to test", hint="give prompts as arguments or with --file")
    variants = [perturb(p, perturbations, seed, n_variants, tagger) for p in prompts]
    texts, index = _unique_texts(prompts, variants)
    emb = session.encode_text(texts, batch_size=batch_size, truncate=truncate)
    anchors = emb[[index[p] for p in prompts]]
    return score_report(
        "text",
        anchors,
        emb,
        index,
        prompts,
        variants,
        perturbations,
        seed,
        n_variants,
        item_names=[f"prompt {i + 1}" for i in range(len(prompts))],
    )


def image_shuffle_test(
    session: Encoder,
    images: torch.Tensor | Sequence[Any],
    captions: list[str],
    perturbations: list[str],
    seed: int = 0,
    n_variants: int = 1,
    item_names: Sequence[str] | None = None,
    tagger: Tagger | None = None,
    truncate: bool = False,
    batch_size: int = 256,
) -> ShuffleReport:
    """cos(V(x), T(p')) against cos(V(x), T(p)) for each image x with true caption p (tensors in
    [0, 1], or photos as PIL images)."""
    perturbations = check_names(perturbations)
    if len(images) != len(captions):
        raise UsageError(f"{len(images)} image(s) but {len(captions)} caption(s)", hint="give one caption per image")
    if not captions:
        raise UsageError("no images to test", hint="give --image with --caption, --jsonl, --invert-dir or --world N")
    variants = [perturb(c, perturbations, seed, n_variants, tagger) for c in captions]
    texts, index = _unique_texts(captions, variants)
    emb = session.encode_text(texts, batch_size=batch_size, truncate=truncate)
    anchors = encode_images(session, images, batch_size)
    return score_report(
        "image",
        anchors,
        emb,
        index,
        captions,
        variants,
        perturbations,
        seed,
        n_variants,
        item_names=item_names or [f"image {i + 1}" for i in range(len(captions))],
    )
