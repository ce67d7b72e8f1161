"""Checks of user input before any work starts: prompts and texts that cannot be written."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from probe.errors import DataError, UsageError


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
