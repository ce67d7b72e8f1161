"""The model's own preprocessing of images read from files: the geometry and resampling a model was
trained and evaluated with (open_clip's transform for its `preprocess_cfg`), up to but not
including normalisation, which the session applies to every image alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

from probe.errors import ModelError

ImageTransform = Callable[[Any], torch.Tensor]
"""An RGB PIL image -> [3,H,W] float tensor in [0,1] at (or near) the model's input size."""

IDENTITY = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # mean, std: normalising by these changes no value


def open_clip_transform(pre: dict, name: str) -> ImageTransform:
    """open_clip's own inference transform for a model's `preprocess_cfg` (resize mode shortest,
    longest or squash, its interpolation, centre crop or pad), with normalisation left out."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    keys = {f.name for f in dataclasses.fields(PreprocessCfg)}
    cfg = {k: v for k, v in pre.items() if k in keys}
    from PIL import Image

    try:
        plain = PreprocessCfg(**{**cfg, "mean": IDENTITY[0], "std": IDENTITY[1]})
        transform = image_transform_v2(plain, is_train=False)
        transform(Image.new("RGB", (9, 7)))  # a size or mode that builds but cannot be applied fails here
        return transform
    except (AssertionError, TypeError, ValueError, RuntimeError) as exc:
        shown = {k: cfg[k] for k in ("size", "resize_mode", "interpolation", "fill_color") if k in cfg}
        raise ModelError(
            f"{name}: its preprocess_cfg is not valid ({shown})",
            hint="resize_mode is shortest, longest or squash; interpolation bicubic or bilinear; size an integer",
        ) from exc


def centre_square(image: Any) -> torch.Tensor:
    """The largest centred square of the image as a [3,S',S'] tensor in [0,1], at its own resolution:
    the session then resizes it to the model's input (bicubic, antialiased). The same geometry as
    open_clip's default (shorter side to the input size, centre crop); a square image is left whole,
    so it is resized exactly as a tensor the probes make."""
    from probe.files.images import pil_to_tensor

    pixels = pil_to_tensor(image)
    h, w = pixels.shape[-2:]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return pixels[:, top : top + side, left : left + side]


def checked_stats(values: Any, what: str, name: str) -> tuple[float, ...]:
    """A model's mean or std as three floats (std positive), or one line saying what is wrong."""
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"{name}: its preprocess {what} is not three numbers: {values!r}",
            hint=f"set {what} to three numbers in the model's config, e.g. [0.5, 0.5, 0.5]",
        ) from exc
    if len(out) != 3 or (what == "std" and any(v <= 0 for v in out)):
        raise ModelError(
            f"{name}: its preprocess {what} must be three {'positive ' if what == 'std' else ''}numbers: {values!r}",
            hint=f"set {what} to three numbers in the model's config, e.g. [0.5, 0.5, 0.5]",
        )
    return out
