"""Output files: atomic writes, safe names from prompts, PNGs with metadata, JSON sidecars, sheets."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Callable, Sequence

from probe.errors import DataError, UsageError

_UNSAFE = re.compile(r"[^a-z0-9]+")
MAX_NAME = 60


def safe_name(text: str, max_len: int = MAX_NAME) -> str:
    """A filename stem from a prompt: ascii, lowercase, dashes; never '..' or a path; hash-suffixed
    when shortened or emptied, so different prompts never collide on the same name."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    stem = _UNSAFE.sub("-", ascii_text.lower()).strip("-")
    if not stem or len(stem) > max_len or stem != text.replace(" ", "-"):
        digest = hashlib.sha256(text.encode()).hexdigest()[:8]
        stem = f"{stem[:max_len].rstrip('-')}-{digest}" if stem else digest
    return stem


def inside(folder: Path, name: str) -> Path:
    """folder/name, refusing anything that would land outside folder."""
    folder = Path(folder).resolve()
    path = (folder / name).resolve()
    if folder != path and folder not in path.parents:
        raise UsageError(f"output name {name!r} escapes the output folder {folder}")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Parse a JSON file, with a DataError naming the file and line on failure."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"file not found: {path}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", "?")
        raise DataError(f"{path}:{line}: not valid JSON ({exc.__class__.__name__})") from exc


def to_pil(image):
    """[3,H,W] float tensor in [0,1] -> PIL RGB with true pixel values (clamped, never stretched)."""
    from PIL import Image

    arr = (image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy())
    return Image.fromarray(arr, "RGB")


def png_bytes(image, metadata: dict[str, Any] | None = None) -> bytes:
    """PNG bytes carrying metadata as text chunks (JSON values), deterministic for equal inputs."""
    import io

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in (metadata or {}).items():
        info.add_text(key, value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str))
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def write_png(path: Path, image, metadata: dict[str, Any] | None = None) -> Path:
    return atomic_write_bytes(path, png_bytes(image, metadata))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def images_under(folder: Path) -> list[Path]:
    """Files with an image suffix (any case) anywhere under `folder`, sorted."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_image(path: Path):
    """An image file -> [3,H,W] float tensor in [0,1]; a clear DataError for anything unreadable."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {path}") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"cannot read image {path}: not a supported image file") from exc
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0


CAPTION_LINES = 3
_LINE_HEIGHT = 12


def wrap_caption(text: str, width: float, measure: Callable[[str], float], max_lines: int = CAPTION_LINES) -> list[str]:
    """The caption as at most `max_lines` lines that each measure <= width: broken at spaces, long
    words split, and an ellipsis where text had to be dropped, so a sheet never shows a silently cut
    prompt."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}" if line else word
        while measure(candidate) > width:
            if line:  # the word starts the next line
                lines.append(line)
                line, candidate = "", word
                continue
            cut = next((k for k in range(len(candidate) - 1, 1, -1) if measure(candidate[:k]) <= width), 1)
            lines.append(candidate[:cut])
            candidate = candidate[cut:]
        line = candidate
    if line:
        lines.append(line)
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and measure(last + "...") > width:
        last = last[:-1]
    return lines[: max_lines - 1] + [last.rstrip() + "..."]


def contact_sheet(images: Sequence, labels: Sequence[str] | None = None, columns: int = 8, cell: int = 128):
    """A grid of images with optional captions under each (wrapped to the cell), as one PIL image."""
    from PIL import Image, ImageDraw

    n = len(images)
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength
    captions = [wrap_caption(str(label), cell - 4, measure) for label in labels] if labels else []
    label_h = _LINE_HEIGHT * max((len(c) for c in captions), default=0) + (2 if captions else 0)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        pil = image if hasattr(image, "resize") and not hasattr(image, "dim") else to_pil(image)
        r, c = divmod(i, columns)
        top = r * (cell + label_h)
        sheet.paste(pil.resize((cell, cell)), (c * cell, top))
        for k, line in enumerate(captions[i] if captions else []):
            draw.text((c * cell + 2, top + cell + k * _LINE_HEIGHT), line, fill="black")
    return sheet


def pil_png_bytes(pil) -> bytes:
    import io

    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
