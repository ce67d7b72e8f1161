"""Output files: atomic writes, safe names from prompts, PNGs with metadata, JSON sidecars, sheets."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from probe.errors import DataError, ProbeError, UsageError

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


def check_prompts(texts: Sequence[str], what: str = "prompt") -> None:
    """One rule for every command's texts: none empty, none holding a NUL byte (binary data)."""
    for text in texts:
        if not text.strip():
            raise UsageError(f"empty {what}", hint="give some text, e.g. 'a red circle'")
        if "\0" in text:
            raise UsageError(f"{what} {text[:40]!r} contains a NUL byte (binary data)", hint="pass plain text")


def refuse_nul(path: Path, text: str, error: type = DataError) -> None:
    """A text file holding a NUL byte is binary data: an error naming the file and line."""
    at = text.find("\0")
    if at >= 0:
        raise error(
            f"{path}:{text.count(chr(10), 0, at) + 1}: binary data (NUL byte), not a text file",
            hint="pass a UTF-8 text file, one entry a line",
        )


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


def write_error(path: Path, exc: OSError) -> ProbeError:
    """A failed write as one line that names the path and what to do (full disk, read-only, a file in the way)."""
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space, or write elsewhere with -o"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a file stands where a folder is needed: move it, or write elsewhere with -o"
    elif exc.errno == errno.EISDIR:
        hint = "a folder stands where the file goes: move it away"
    else:
        hint = "choose a writable folder with -o"
    return ProbeError(f"cannot write {path}: {reason}", hint=hint)


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written there, before any long work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise write_error(folder, exc) from exc


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write via a temp file in the same folder and rename, so readers never see half a file;
    an OSError (disk full, read-only, a file in the way) becomes a ProbeError naming the path."""
    try:
        return _atomic_write(Path(path), data)
    except OSError as exc:
        raise write_error(Path(path), exc) from exc


def _atomic_write(path: Path, data: bytes) -> Path:
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


def remove_stale_temp_files(folder: Path) -> int:
    """Delete the temp files of atomic writes that a killed process left under `folder` (call it only
    while holding the folder's lock, so no live writer's file is touched); returns how many."""
    stale = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()] if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def atomic_write_text(path: Path, text: str) -> Path:
    """UTF-8 text written atomically (see `atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Indented JSON with sorted keys written atomically, so reruns write identical bytes."""
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

    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
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
    import warnings

    from PIL import Image, UnidentifiedImageError

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


def load_image(path: Path):
    """An image file -> [3,H,W] float tensor in [0,1]; a clear DataError for anything unreadable,
    truncated or larger than MAX_IMAGE_PIXELS."""
    import warnings

    import numpy as np
    import torch
    from PIL import Image

    with open_image(path) as im:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except (OSError, SyntaxError, ValueError) as exc:
            raise DataError(
                f"cannot read image {path}: the file is damaged or truncated ({exc})", hint="replace or delete the file"
            ) from exc
    return torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0


CAPTION_LINES = 3


def _longest(n: int, fits: Callable[[int], bool]) -> int:
    """The largest k in 0..n with fits(k), for a fits that holds up to some k and fails after
    (bisection: a long word or URL costs log n measurements, not n)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _next_line(text: str, width: float, measure: Callable[[str], float]) -> tuple[str, str]:
    """(first line, rest): broken at the last space that fits, or inside a word too long for a line."""
    if measure(text) <= width:
        return text, ""
    cut = max(1, _longest(len(text), lambda k: measure(text[:k]) <= width))
    space = text.rfind(" ", 0, cut + 1)
    if space > 0:
        return text[:space], text[space + 1 :]
    return text[:cut], text[cut:].lstrip()


def wrap_caption(text: str, width: float, measure: Callable[[str], float], max_lines: int = CAPTION_LINES) -> list[str]:
    """The caption as at most `max_lines` lines no wider than `width`, the last one ending in '...'
    when text was dropped, so a sheet never shows a silently cut prompt. (A single character, or the
    '...', wider than `width` is still written: wrapping always moves on.)"""
    if width <= 0 or max_lines < 1:
        raise ValueError(f"caption width and line count must be positive, got {width} and {max_lines}")
    rest = " ".join(text.split())
    lines: list[str] = []
    while rest and len(lines) < max_lines - 1:
        line, rest = _next_line(rest, width, measure)
        lines.append(line)
    if rest:
        if measure(rest) > width:
            rest = rest[: _longest(len(rest), lambda k: measure(rest[:k].rstrip() + "...") <= width)].rstrip() + "..."
        lines.append(rest)
    return lines


def caption_line_height(font) -> int:
    """Pixels per caption line in `font`: its tallest glyphs plus a gap, so descenders never touch
    the next line whatever font Pillow falls back to."""
    return font.getbbox("Ag|jy")[3] + 2


def _draw_lines(draw, x: int, y: int, lines: Sequence[str], font, line_h: int) -> None:
    """Caption or header lines, one under another, from (x, y)."""
    for k, line in enumerate(lines):
        draw.text((x, y + k * line_h), line, fill="black", font=font)


def contact_sheet(images: Sequence, labels: Sequence[object] | None = None, columns: int = 8, cell: int = 128):
    """A grid of images with optional captions under each (wrapped to the cell), as one PIL image."""
    from PIL import Image, ImageDraw, ImageFont

    n = len(images)
    if labels is not None and len(labels) and len(labels) != n:
        raise ValueError(f"contact sheet: {len(labels)} labels for {n} images")
    columns = max(1, min(columns, n))
    rows = (n + columns - 1) // columns
    font = ImageFont.load_default()
    line_h = caption_line_height(font)
    captions = [wrap_caption(str(label), cell - 4, font.getlength) for label in labels or ()]
    label_h = line_h * max(map(len, captions), default=0)
    sheet = Image.new("RGB", (columns * cell, rows * (cell + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        pil = _as_pil(image)
        r, c = divmod(i, columns)
        top = r * (cell + label_h)
        sheet.paste(pil.resize((cell, cell)), (c * cell, top))
        _draw_lines(draw, c * cell + 2, top + cell, captions[i] if captions else (), font, line_h)
    return sheet


GRID_LABEL_WIDTH = 160  # pixels of the row-header band (about 25 characters a line)


def _as_pil(image):
    return image if hasattr(image, "resize") and not hasattr(image, "dim") else to_pil(image)


def contact_grid(
    cells: Sequence[Sequence[object | None]],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    captions: Sequence[Sequence[str]] | None = None,
    cell: int = 128,
):
    """A table of images as one PIL image: a header band naming each column (a seed), a band on the
    left naming each row (a prompt, wrapped), and an optional caption under each image. A None cell
    stays blank, so each image keeps its row and column whichever others exist."""
    from PIL import Image, ImageDraw, ImageFont

    n_rows, n_cols = len(row_labels), len(column_labels)
    if len(cells) != n_rows or any(len(row) != n_cols for row in cells):
        raise ValueError(f"contact grid: cells must be {n_rows} rows of {n_cols} images (None where there is none)")
    font = ImageFont.load_default()
    line_h = caption_line_height(font)
    heads = [wrap_caption(str(label), cell - 4, font.getlength, max_lines=2) for label in column_labels]
    head_h = line_h * max(map(len, heads), default=1) + 4
    left = GRID_LABEL_WIDTH
    row_lines = max(1, cell // line_h)
    names = [wrap_caption(str(label), left - 8, font.getlength, max_lines=row_lines) for label in row_labels]
    wrapped = [[wrap_caption(str(c), cell - 4, font.getlength) for c in row] for row in captions or ()]
    caption_h = line_h * max((len(c) for row in wrapped for c in row), default=0)
    row_h = cell + caption_h
    sheet = Image.new("RGB", (left + n_cols * cell, head_h + n_rows * row_h), "white")
    draw = ImageDraw.Draw(sheet)
    for c, lines in enumerate(heads):
        _draw_lines(draw, left + c * cell + 2, 2, lines, font, line_h)
    for r, row in enumerate(cells):
        top = head_h + r * row_h
        _draw_lines(draw, 4, top + 2, names[r], font, line_h)
        for c, image in enumerate(row):
            if image is None:
                continue
            sheet.paste(_as_pil(image).resize((cell, cell)), (left + c * cell, top))
            _draw_lines(draw, left + c * cell + 2, top + cell, wrapped[r][c] if wrapped else (), font, line_h)
    return sheet


def pil_png_bytes(pil) -> bytes:
    """A PIL image (e.g. a contact sheet) as PNG bytes."""
    import io

    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()
