"""Images in and out: decoding with size limits, PNG bytes with metadata, finding images."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from probe.errors import DataError
from probe.files.atomic import atomic_write_bytes


def to_pil(image):
    """[3,H,W] float tensor in [0,1] -> PIL RGB with true pixel values (clamped, never stretched)."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def png_bytes(image, metadata: dict[str, Any] | None = None) -> bytes:
    """PNG bytes carrying metadata as text chunks (JSON values), deterministic for equal inputs."""
    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_png(path: Path, image, metadata: dict[str, Any] | None = None) -> Path:
    """A [3,H,W] image in [0,1] as a PNG with metadata text chunks, written atomically."""
    return atomic_write_bytes(path, png_bytes(image, metadata))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def images_under(folder: Path) -> list[Path]:
    """Files with an image suffix (any case) anywhere under `folder`, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


MAX_IMAGE_PIXELS = 8192 * 8192
"""Largest image (width x height) any command reads: a 'decompression bomb' PNG is refused from its header."""


def open_image(path: Path):
    """A lazily decoded PIL image after checking the file exists and its size is within MAX_IMAGE_PIXELS."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {path}") from exc
    except Image.DecompressionBombError as exc:
        raise DataError(
            f"image {path} is over the limit of {MAX_IMAGE_PIXELS} pixels", hint="downscale it first"
        ) from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: not a supported image file") from exc
    w, h = im.size
    if w * h > MAX_IMAGE_PIXELS:
        im.close()
        raise DataError(
            f"image {path} is {w}x{h} pixels, over the limit of {MAX_IMAGE_PIXELS}", hint="downscale it first"
        )
    return im


def image_intact(path: Path) -> bool:
    """Whether an image file exists and decodes completely (a truncated or damaged file does not)."""
    try:
        with open_image(path) as im:
            im.load()
    except (DataError, OSError):
        return False
    return True


def check_images(paths: Sequence[Path]) -> None:
    """Every path is a readable image of allowed size (headers only): a cheap check before a model loads."""
    for path in paths:
        open_image(path).close()


def load_photo(path: Path) -> Image.Image:
    """An image file decoded to an RGB PIL image, for the model's own preprocessing
    (`Session.prepare`: resize mode, interpolation and crop as the model was trained with); a clear
    DataError for anything unreadable, truncated or larger than MAX_IMAGE_PIXELS."""
    with open_image(path) as im:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                rgb = im.convert("RGB")
                rgb.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(
                f"cannot read image {path}: the file is damaged or truncated ({exc})", hint="replace or delete the file"
            ) from exc
    return rgb


def pil_to_tensor(image: Image.Image):
    """An RGB PIL image -> [3,H,W] float tensor in [0,1] (uint8 / 255, as torchvision's ToTensor)."""
    import numpy as np
    import torch

    arr = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0


def load_image(path: Path):
    """An image file -> [3,H,W] float tensor in [0,1], pixels as stored (no resizing); a clear
    DataError for anything unreadable, truncated or larger than MAX_IMAGE_PIXELS."""
    return pil_to_tensor(load_photo(path))


def pil_png_bytes(pil) -> bytes:
    """A PIL image (e.g. a contact sheet) as PNG bytes."""
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
