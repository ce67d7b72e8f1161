"""Small self-contained HTML for notebooks (`_repr_html_` of result objects): tables and image grids
with the images embedded, user text escaped, no network requests."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

from probe.files.images import pil_png_bytes, to_pil


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None) -> str:
    """An HTML table; every cell is escaped text."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    caption = f"<caption style='text-align:left'>{html.escape(title)}</caption>" if title else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def image_grid(images: Sequence[Any], captions: Sequence[str], size: int = 160) -> str:
    """Images ([3,H,W] tensors in [0,1] or PIL images) as embedded PNGs, each with its caption below."""
    tiles = []
    for image, caption in zip(images, captions, strict=True):
        data = base64.b64encode(pil_png_bytes(to_pil(image))).decode("ascii")
        tiles.append(
            f"<figure style='display:inline-block;margin:4px;width:{size}px;vertical-align:top'>"
            f"<img src='data:image/png;base64,{data}' width='{size}' height='{size}' "
            f"style='image-rendering:pixelated' alt='{html.escape(caption, quote=True)}'/>"
            f"<figcaption style='font-size:12px'>{html.escape(caption)}</figcaption></figure>"
        )
    return "<div>" + "".join(tiles) + "</div>"
