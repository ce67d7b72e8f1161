"""Checks of user input before any work starts: prompts and texts that cannot be written."""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from probe.errors import DataError, UsageError
from probe.files.images import IMAGE_SUFFIXES


def check_prompts(texts: Sequence[str], what: str = "prompt", image_option: str | None = None) -> None:
    """One rule for every command's texts: none empty, none holding a NUL byte (binary data). With
    `image_option`, a text that is an image file's name is refused with the option that takes images:
    embedding "photo.png" as words gives a meaningless answer, silently."""
    for text in texts:
        if not text.strip():
            raise UsageError(f"empty {what}", hint="give some text, e.g. 'a red circle'")
        if "\0" in text:
            raise UsageError(f"{what} {text[:40]!r} contains a NUL byte (binary data)", hint="pass plain text")
        if not utf8_text(text):
            raise UsageError(f"{what} {text[:40]!r} holds bytes that are not UTF-8 text", hint="write it in UTF-8")
        if image_option and _names_an_image(text):
            raise UsageError(
                f"{what} {text[:200]!r} is an image file's name, not a {what}",
                hint=f"did you mean {image_option} {text[:200]}?",
            )


def _names_an_image(text: str) -> bool:
    """An existing file, or one word ending in an image suffix (a path the user mistyped)."""
    stripped = text.strip()
    if not stripped.lower().endswith(IMAGE_SUFFIXES):
        return False
    return " " not in stripped or Path(stripped).expanduser().is_file()


def refuse_nul(path: Path, text: str, error: type = DataError) -> None:
    """A text file holding a NUL byte is binary data: an error naming the file and line."""
    at = text.find("\0")
    if at >= 0:
        raise error(
            f"{path}:{text.count(chr(10), 0, at) + 1}: binary data (NUL byte), not a text file",
            hint="pass a UTF-8 text file, one entry a line",
        )


def check_new_file(path: Path | None, force: bool) -> None:
    """A named output that exists is replaced only with --force: a user's file is never overwritten by
    surprise. Checked before any model loads."""
    if path is not None and not force and (Path(path).exists() or Path(path).is_symlink()):
        raise UsageError(f"{path} already exists", hint="pick another name, or pass --force to replace it")


def utf8_text(text: str) -> bool:
    """Whether a command-line text or file name is UTF-8: undecodable bytes arrive as surrogates,
    which no output (terminal, JSON, a file name) can write."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def not_regular(path: Path) -> str | None:
    """What an existing path is when it is not a regular file ("a named pipe (FIFO)", "a device", ...),
    following links; None for a regular file or a path that does not exist. Reading a FIFO or
    /dev/zero never ends, so inputs are refused before they are opened."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def check_regular_file(path: Path, what: str, error: type = DataError) -> None:
    """Refuse an input that exists but is not a regular file, naming what it is (one line, at once)."""
    kind = not_regular(Path(path))
    if kind is not None:
        raise error(f"{what} {path} is {kind}, not a regular file", hint="copy its contents to a regular file first")
