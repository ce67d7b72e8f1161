"""Contact sheets and labelled grids: many images with captions in one PNG."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image, ImageDraw, ImageFont

from probe.files.images import to_pil

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
