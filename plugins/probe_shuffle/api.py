"""`probe.shuffle_test(...)`: does the model care about word order, for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def shuffle_test(
    session: Any,
    prompts: str | Sequence[str],
    perturbations: Sequence[str] | None = None,
    seed: int = 0,
    n_variants: int = 1,
    images: Any = None,
) -> Any:
    """A ShuffleReport: per perturbation, how much the score moves when the caption is perturbed.

    Text mode (no images): cos(T(p), T(p')). Image mode (one image per prompt: a [B,3,H,W] batch, or
    a list of tensors, photo paths or PIL images, photos preprocessed as the model's own pipeline does):
    cos(V(x), T(p')) against cos(V(x), T(p)), with order blindness and P@1.
    """
    from probe_shuffle.order_scores import image_shuffle_test, text_shuffle_test
    from probe_shuffle.perturbations import list_perturbations

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    names = list(perturbations) if perturbations else list_perturbations()
    if images is None:
        return text_shuffle_test(session, prompts, names, seed, n_variants)
    return image_shuffle_test(session, images, prompts, names, seed, n_variants)
