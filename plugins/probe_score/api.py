"""`probe.score(...)`: CLIP cosines and zero-shot labels for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def score(session: Any, images: Any, prompts: str | Sequence[str]) -> Any:
    """A ScoreResult: each image's cosine to each prompt, softmax probabilities and winning label.

    images: paths or PIL images (photos: the model's own preprocessing, as open_clip's `preprocess`
    or the checkpoint's processor), [3,H,W] tensors in [0,1] of any size (resized as they are), or a
    [B,3,H,W] batch.
    """
    from probe.plugin import load_photo, score_images

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    items = [images] if isinstance(images, (str, Path)) or hasattr(images, "convert") else list(images)
    pixels = [load_photo(Path(i)) if isinstance(i, (str, Path)) else i for i in items]
    names = [str(i) if isinstance(i, (str, Path)) else f"image {n}" for n, i in enumerate(items)]
    return score_images(session, pixels, prompts, names=names)
