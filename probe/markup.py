"""Small self-contained HTML: the one table renderer (notebooks' `_repr_html_`, `probe report`) and
image grids with the images embedded. Every user text goes through one escaper, markupsafe's (the
one jinja's autoescape uses); no network requests."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from markupsafe import Markup, escape

from probe.files.images import pil_png_bytes, to_pil

__all__ = ["Markup", "Table", "escape", "image_grid", "table"]


def table(
    columns: Sequence[Any],
    rows: Sequence[Sequence[Any]],
    title: str | None = None,
    note: str | None = None,
    cell_class: Callable[[Any], str | None] | None = None,
) -> Markup:
    """An HTML table of escaped text: an optional caption (`title`), a note paragraph after it, and
    `cell_class(value)` naming a CSS class for a body cell (e.g. greying 0% shares)."""

    def td(value: Any) -> Markup:
        name = cell_class(value) if cell_class else None
        return Markup("<td class={}>{}</td>").format(name, value) if name else Markup("<td>{}</td>").format(value)

    head = Markup("").join(Markup("<th>{}</th>").format(c) for c in columns)
    body = Markup("").join(Markup("<tr>{}</tr>").format(Markup("").join(td(v) for v in row)) for row in rows)
    caption = Markup("<caption style='text-align:left'>{}</caption>").format(title) if title else ""
    after = Markup("<p class='note'>{}</p>").format(note) if note else ""
    return Markup("<table>{}<thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}").format(caption, head, body, after)


@dataclass
class Table:
    """A plain table (title, columns, rows of strings, a note) and its markdown, CSV and HTML forms."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def to_markdown(self) -> str:
        def cell(text: str) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")

        lines = [f"### {self.title}", ""] if self.title else []
        lines.append("| " + " | ".join(cell(c) for c in self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def to_csv(self) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return buf.getvalue()

    def to_html(self, cell_class: Callable[[Any], str | None] | None = None) -> Markup:
        return table(self.columns, self.rows, note=self.note or None, cell_class=cell_class)


def image_grid(images: Sequence[Any], captions: Sequence[str], size: int = 160) -> Markup:
    """Images ([3,H,W] tensors in [0,1] or PIL images) as embedded PNGs, each with its caption below."""
    tiles = []
    for image, caption in zip(images, captions, strict=True):
        data = base64.b64encode(pil_png_bytes(to_pil(image))).decode("ascii")
        tiles.append(
            Markup(
                "<figure style='display:inline-block;margin:4px;width:{size}px;vertical-align:top'>"
                "<img src='data:image/png;base64,{data}' width='{size}' height='{size}' "
                "style='image-rendering:pixelated' alt='{caption}'/>"
                "<figcaption style='font-size:12px'>{caption}</figcaption></figure>"
            ).format(size=size, data=data, caption=caption)
        )
    return Markup("<div>{}</div>").format(Markup("").join(tiles))
