"""Zero-shot attribute labels for images, against a label set (several prompts per attribute)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from probe_audit.sets import LabelSet


@dataclass
class Labels:
    """The winning attribute per image and the softmax probability of every attribute."""

    attributes: list[str]
    labels: list[str]
    probs: list[list[float]]


def attribute_embeddings(session, label_set: LabelSet) -> torch.Tensor:
    """[A, D]: each attribute's prompt embeddings averaged and renormalised (prompt ensembling)."""
    prompts = [p for ps in label_set.labels.values() for p in ps]
    emb = session.encode_text(prompts)
    rows, start = [], 0
    for ps in label_set.labels.values():
        rows.append(emb[start : start + len(ps)].mean(dim=0))
        start += len(ps)
    return F.normalize(torch.stack(rows), dim=-1)


def label_images(session, images: torch.Tensor, label_set: LabelSet, batch_size: int = 64) -> Labels:
    """Label each image [B,3,H,W] with the attribute whose prompts it matches best (softmax at the model's scale)."""
    from probe.plugin import zero_shot

    attrs = label_set.attributes
    text_emb = attribute_embeddings(session, label_set)
    probs = []
    for start in range(0, images.shape[0], batch_size):
        _, p = zero_shot(session, images[start : start + batch_size], attrs, text_emb=text_emb)
        probs.append(p)
    probs_t = torch.cat(probs) if probs else torch.empty(0, len(attrs))
    labels = [attrs[i] for i in probs_t.argmax(dim=-1).tolist()]
    return Labels(attrs, labels, [[round(float(x), 6) for x in row] for row in probs_t.tolist()])
