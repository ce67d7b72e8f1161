"""The user cache folder, content hashes and cross-process file locks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from probe.errors import ProbeError, UsageError
from probe.files.atomic import atomic_write_text

CACHE_ENV = "PROBE_CACHE_DIR"
MARKER = ".clip-probe-cache"
"""A file in every subfolder the tool makes in the cache, so `probe cache clear` deletes only those."""
BUILTIN_SUBFOLDERS = ("hashes", "indexes", "text-snapshots", "vocabs")
"""The core's and built-in plugins' cache subfolders (also recognised when made before the marker existed)."""


def cache_root() -> Path:
    """$PROBE_CACHE_DIR, else $XDG_CACHE_HOME/clip-probe, else ~/.cache/clip-probe (not created)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clip-probe"
    )
    return Path(root)


def cache_dir(sub: str = "") -> Path:
    """The cache folder (or its subfolder `sub`, marked as the tool's own unless built in), created on first use;
    a cache path that is a file or cannot be created is a ProbeError that says what to set."""
    path = cache_root() / sub if sub else cache_root()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if sub and sub not in BUILTIN_SUBFOLDERS and not (path / MARKER).exists():
            (path / MARKER).touch()
    except OSError as exc:
        raise ProbeError(
            f"cannot use {path} as the cache folder: {exc.strerror or exc}",
            hint=f"set {CACHE_ENV} to a writable folder",
        ) from exc
    return path


def tool_subfolders(root: Path) -> list[Path]:
    """Subfolders of the cache root that the tool made (they hold its marker file, or have a built-in name)."""
    if not root.is_dir():
        return []
    return sorted(
        p
        for p in root.iterdir()
        if p.is_dir() and not p.is_symlink() and ((p / MARKER).is_file() or p.name in BUILTIN_SUBFOLDERS)
    )


def content_hash(*parts: str | bytes) -> str:
    """A short stable hash of text or bytes parts, for cache keys."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:24]


def hash_file(path: Path) -> str:
    """sha256 hex digest of a file, read in 1 MiB chunks (no memo: for files that are about to change)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised by (path, size, mtime) so big checkpoints are hashed once."""
    path = Path(path).resolve()
    st = path.stat()
    key = content_hash(str(path), str(st.st_size), str(st.st_mtime_ns))
    memo = cache_dir("hashes") / f"{key}.json"
    try:
        return json.loads(memo.read_text())["sha256"]
    except (OSError, ValueError, KeyError):
        pass
    digest = hash_file(path)
    if st.st_size > 64 << 20:  # only worth remembering for large files
        atomic_write_text(memo, json.dumps({"path": str(path), "sha256": digest}))
    return digest


def file_lock(path: Path, timeout: float = 600.0):
    """A cross-process lock next to `path` (filelock works on every OS)."""
    return FileLock(str(path) + ".lock", timeout=timeout)


@contextmanager
def folder_lock(folder: Path, what: str) -> Iterator[None]:
    """An exclusive lock on an output folder (a hidden lock file beside it), so a second run into the
    same folder fails at once with a clear message instead of computing and writing the same files."""
    folder = Path(folder)
    lock = file_lock(folder.parent / f".{folder.name}", timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise UsageError(
            f"another probe {what} is writing to {folder}",
            hint="wait for it to finish, or choose another output folder",
        ) from None
    try:
        yield
    finally:
        lock.release()
