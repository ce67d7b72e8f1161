"""`probe.score(...)`: CLIP cosines and zero-shot labels for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def score(session: Any, images: Any, prompts: str | Sequence[str]) -> Any:
    """A ScoreResult: each image's cosine to each prompt, softmax probabilities and winning label.

    images: paths, [3,H,W] tensors in [0,1] (any size), or a [B,3,H,W] batch.
    """
    from probe.plugin import load_image, score_images

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    items = [images] if isinstance(images, (str, Path)) else list(images)
    pixels = [load_image(Path(i)) if isinstance(i, (str, Path)) else i for i in items]
    names = [str(i) if isinstance(i, (str, Path)) else f"image {n}" for n, i in enumerate(items)]
    return score_images(session, pixels, prompts, names=names)
