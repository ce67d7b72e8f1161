"""The user cache folder, content hashes and cross-process file locks."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from probe.errors import ConfigError

CACHE_ENV = "PROBE_CACHE_DIR"


def cache_dir(sub: str = "") -> Path:
    """$PROBE_CACHE_DIR, else $XDG_CACHE_HOME/clip-probe, else ~/.cache/clip-probe."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clip-probe"
    )
    path = Path(root) / sub if sub else Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, or no permission: say which folder and how to choose another
        raise ConfigError(f"cannot use {path} as the cache folder: {exc.strerror or exc}",
                          hint=f"set {CACHE_ENV} to a writable folder") from exc
    return path


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
        from probe.io import atomic_write_text

        atomic_write_text(memo, json.dumps({"path": str(path), "sha256": digest}))
    return digest


def file_lock(path: Path, timeout: float = 600.0):
    """A cross-process lock next to `path` (filelock works on every OS)."""
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=timeout)
