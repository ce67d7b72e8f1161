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

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(obj: Any) -> None:
    """Machine-readable output on stdout (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(obj, indent=2, default=str, ensure_ascii=False) + "\n")
    sys.stdout.flush()


BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: str) -> str:
    """Text safe to show on a terminal: control characters (ESC sequences...) and bidi overrides
    appear as visible escapes such as \\x1b or \\u202e, so a prompt cannot restyle or reorder the screen."""
    import unicodedata

    out = []
    for ch in text:
        if ch in "\n\t" or not (ch in BIDI_CONTROLS or unicodedata.category(ch) == "Cc"):
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


def _cell(value: Any) -> Any:
    """A table cell: rich objects as they are, anything else as plain text (no markup, escaped controls)."""
    if hasattr(value, "__rich__") or hasattr(value, "__rich_console__"):
        return value
    return Text(printable(str(value)), overflow="fold")


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A rich Table of the rows (plain-text cells, controls escaped, long ones folded); `print_table` prints one."""
    t = Table(title=Text(printable(title)) if title is not None else None, title_justify="left")
    for col in columns:
        t.add_column(col, overflow="fold")
    for row in rows:
        t.add_row(*[_cell(c) for c in row])
    return t


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A table on stdout (with `--json`, commands print JSON instead)."""
    out.print(table(title, columns, rows))


def echo(text: str) -> None:
    """A plain line on stdout (paths, results meant for pipes), never wrapped or styled."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def note(message: str) -> None:
    """A status line on stderr, so stdout stays clean for --json (plain text: controls escaped, no markup)."""
    err.print(Text(printable(message)))


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
