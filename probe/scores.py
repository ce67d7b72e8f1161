"""CLIP scores and zero-shot labels: the `probe score` command and the labeller every audit uses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from probe.markup import table
from probe.session import Session


@dataclass
class ScoreResult:
    """Cosines [images × prompts], zero-shot probabilities and the winning label per image."""

    prompts: list[str]
    names: list[str]
    cosine: list[list[float]]
    probs: list[list[float]]
    labels: list[str]

    def as_dict(self) -> dict:
        return asdict(self)

    def _repr_html_(self) -> str:
        rows = [
            [n, *(f"{c:.3f} ({p:.0%})" for c, p in zip(cos, probs, strict=True)), label]
            for n, cos, probs, label in zip(self.names, self.cosine, self.probs, self.labels, strict=True)
        ]
        return table(["image", *self.prompts, "label"], rows, "CLIP cosine (zero-shot probability)")


DEFAULT_LOGIT_SCALE = 100.0  # OpenAI CLIP's trained temperature: for models that carry none


def logit_scale(session: Session) -> float:
    """The model's own learned temperature (`exp(logit_scale)`, 100 for OpenAI CLIP), so zero-shot
    probabilities are the model's; DEFAULT_LOGIT_SCALE for a model without one."""
    scale = getattr(session.model, "logit_scale", None)
    return float(scale.exp().item()) if scale is not None else DEFAULT_LOGIT_SCALE


def logit_bias(session: Session) -> float:
    """The model's learned logit bias (SigLIP's), 0 without one. Softmax over prompts is unchanged by
    it; it is added so the logits are the model's own `logits_per_image`."""
    bias = getattr(session.model, "logit_bias", None)
    return float(bias.item()) if bias is not None else 0.0


def zero_shot(
    session: Session, images: torch.Tensor, prompts: list[str], text_emb: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cosine [B,P], softmax probabilities [B,P]) of images against prompts: the softmax of the
    model's own logits (scale × cosine + bias)."""
    if text_emb is None:
        text_emb = session.encode_text(prompts)
    img = session.encode_image(images).cpu()
    cos = img @ text_emb.T
    return cos, torch.softmax(cos * logit_scale(session) + logit_bias(session), dim=-1)


def score_images(
    session: Session,
    images: list[Any],
    prompts: list[str],
    names: list[str] | None = None,
    batch_size: int = 64,
) -> ScoreResult:
    """Score each image against every prompt, batched. Images: photos (paths or PIL images, through
    the model's own preprocessing) or [3,H,W] tensors in [0,1] of any size (resized as they are)."""
    text_emb = session.encode_text(prompts)
    cos_rows, prob_rows = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.cat([session.prepare(im) for im in images[start : start + batch_size]])
        cos, probs = zero_shot(session, batch, prompts, text_emb)
        cos_rows.append(cos)
        prob_rows.append(probs)
    cos = torch.cat(cos_rows) if cos_rows else torch.empty(0, len(prompts))
    probs = torch.cat(prob_rows) if prob_rows else torch.empty(0, len(prompts))
    labels = [prompts[i] for i in probs.argmax(dim=-1).tolist()] if len(prompts) else []
    names = names or [f"image {i}" for i in range(len(images))]
    return ScoreResult(prompts, names, cos.tolist(), probs.tolist(), labels)
