"""File and folder names made from user text: safe, short, and kept inside their folder."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from probe.errors import UsageError

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
