"""Terminal output for CLI layers (core and plugins): tables, JSON, progress bars, messages.

Only CLI code imports this; library functions return data instead of printing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from probe.errors import escaped

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout (no colour, no wrapping). An object gets a
    `plugin_replacements` record when plugins replaced parts with `replace=True` in this process."""
    if isinstance(obj, dict) and "plugin_replacements" not in obj:
        from probe.registry import _active

        if _active and _active[0].replacements:
            obj = {**obj, "plugin_replacements": list(_active[0].replacements)}
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def printable(text: str) -> str:
    """Text safe to show on a terminal: control characters (ESC sequences...) and bidi overrides
    appear as visible escapes such as \\x1b or \\u202e, so a prompt cannot restyle or reorder the screen."""
    return escaped(text, keep="\n\t")


def _cell(value: Any) -> Any:
    """A table cell: rich objects as they are, anything else as plain text (no markup, escaped controls)."""
    if hasattr(value, "__rich__") or hasattr(value, "__rich_console__"):
        return value
    return Text(printable(str(value)), overflow="fold")


def _plain(value: Any) -> str | None:
    """A cell's text when it is plain text (what width fitting can measure), else None."""
    if isinstance(value, Text):
        return value.plain
    if hasattr(value, "__rich__") or hasattr(value, "__rich_console__"):
        return None
    return printable(str(value))


def _extent(header: str, cells: Sequence[str], longest_word: int) -> tuple[int, int, int]:
    """(longest word, longest body line, longest line with the header) of a column, in terminal cells;
    a word longer than `longest_word` (a path, a URL) counts as that long: it is the one thing folded."""
    from rich.cells import cell_len

    def lines(texts: Sequence[str]) -> list[int]:
        return [cell_len(line) for t in texts for line in t.splitlines()]

    word = max((min(cell_len(w), longest_word) for t in [header, *cells] for w in t.split()), default=1)
    body = max([word, *lines(cells)])
    return word, body, max([body, *lines([header])])


def _extents(columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int) -> list[tuple[int, int, int]] | None:
    """Each column's extents (see _extent), or None when a cell is not plain text."""
    texts: list[list[str]] = []
    for col in zip(columns, *rows, strict=False) if rows else [[c] for c in columns]:
        cells = [_plain(c) for c in col]
        if None in cells:
            return None
        texts.append([c for c in cells if c is not None])
    return [_extent(col[0], col[1:], max(16, width // 4)) for col in texts]


def _table_overhead(n_columns: int) -> int:
    """Cells a rich table's borders and padding take: '│ ' before each column, ' │' after the last."""
    return 3 * n_columns + 1


def _fill(widths: list[int], targets: Sequence[int], spare: int) -> int:
    """Grow widths towards targets: whole columns that need least first, then the rest shared evenly;
    returns the spare left."""
    order = sorted((i for i in range(len(widths)) if targets[i] > widths[i]), key=lambda i: targets[i] - widths[i])
    while order and targets[order[0]] - widths[order[0]] <= spare:
        i = order.pop(0)
        spare -= targets[i] - widths[i]
        widths[i] = targets[i]
    for left, i in zip(range(len(order), 0, -1), order, strict=True):
        give = min(targets[i] - widths[i], spare // left)
        widths[i] += give
        spare -= give
    return spare


def fit_widths(extents: Sequence[tuple[int, int, int]], room: int) -> list[int] | None:
    """Column widths summing to at most `room` that never break a word. Each column gets its longest
    word; the space left goes first to the columns that need least to show every cell on one line
    (numbers, short labels), the rest is shared; headers, which may take two lines, come last.
    None when every column fits as it is, or when the longest words alone are too wide (the caller
    splits the table)."""
    lows = [lo for lo, _, _ in extents]
    if sum(full for _, _, full in extents) <= room or sum(lows) > room:
        return None
    widths = list(lows)
    spare = _fill(widths, [body for _, body, _ in extents], room - sum(lows))
    _fill(widths, [full for _, _, full in extents], spare)
    return widths


def column_groups(extents: Sequence[tuple[int, ...]], width: int) -> list[list[int]]:
    """Columns split into groups that each fit `width` with whole words, every group led by the first
    (key) column, as wide data frames are printed; one group when the table fits or cannot be split."""
    if len(extents) < 3 or sum(e[0] for e in extents) + _table_overhead(len(extents)) <= width:
        return [list(range(len(extents)))]
    groups: list[list[int]] = []
    for i in range(1, len(extents)):
        group = groups[-1] if groups else None
        if group and sum(extents[j][0] for j in [*group, i]) + _table_overhead(len(group) + 1) <= width:
            group.append(i)
        else:
            groups.append([0, i])
    return groups


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], width: int | None = None) -> Table:
    """A rich table; with `width`, plain-text columns get widths that fit it without breaking words."""
    t = Table(title=Text(printable(title)) if title is not None else None, title_justify="left")
    extents = _extents(columns, rows, width) if width is not None else None
    widths = fit_widths(extents, width - _table_overhead(len(columns))) if extents and width else None
    for i, col in enumerate(columns):
        t.add_column(col, overflow="fold", width=widths[i] if widths else None)
    for row in rows:
        t.add_row(*[_cell(c) for c in row])
    return t


def print_table(
    columns: Sequence[str] | str | None, rows: Sequence[Sequence[Any]], *more: Any, title: str | None = None
) -> None:
    """A table on stdout fitted to the terminal: cells wrap between words; a table too wide for that is
    printed as several, each repeating the first column (--json / --csv give the full width).
    Same argument order as `html_table(columns, rows, title=...)`; the older `print_table(title,
    columns, rows)` order is still read (a title is a str, columns never are)."""
    if isinstance(columns, str) or columns is None:  # print_table(title, columns, rows): plugin API 1
        title, columns, rows = columns, rows, more[0]  # type: ignore[assignment]
    assert not isinstance(columns, str) and columns is not None
    width = out.width
    extents = _extents(columns, rows, width)
    groups = column_groups(extents, width) if extents else [list(range(len(columns)))]
    for k, group in enumerate(groups):
        part = title if len(groups) == 1 else f"{title or ''} (part {k + 1} of {len(groups)})".strip()
        if part:  # above the table, wrapped to the terminal rather than to the table's width
            out.print(Text(printable(part), overflow="fold"), soft_wrap=False)
        out.print(table(None, [columns[i] for i in group], [[row[i] for i in group] for row in rows], width))


def echo(text: str) -> None:
    """A plain line on stdout (paths, results meant for pipes), never wrapped or styled."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A status line on stderr, so stdout stays clean for --json (plain text: controls escaped, no markup)."""
    err.print(Text(printable(message)))


@contextmanager
def status(message: str) -> Iterator[None]:
    """A spinner line on stderr while something slow with no steps to count runs (a model loading),
    cleared when it ends; nothing when stderr is not a terminal, like the progress bars."""
    if not err.is_terminal:
        yield
        return
    with err.status(Text(printable(message)), spinner="dots"):
        yield


@contextmanager
def progress(description: str, total: int | None, extra: str = "") -> Iterator[Any]:
    """A rich progress bar on stderr; yields an `advance(n, **fields)` callable. Hidden when not a TTY."""
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    if extra:
        columns.append(TextColumn(extra))
    with Progress(*columns, console=err, transient=False, disable=not err.is_terminal) as bar:
        task = bar.add_task(description, total=total, info="")

        def advance(n: int = 1, **fields: Any) -> None:
            bar.update(task, advance=n, **fields)

        yield advance
