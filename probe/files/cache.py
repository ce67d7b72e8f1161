"""The user cache folder, content hashes and cross-process file locks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from probe.errors import ProbeError, UsageError
from probe.files.atomic import CACHE_MARKER, atomic_write_text, write_error

CACHE_ENV = "PROBE_CACHE_DIR"
MARKER = CACHE_MARKER
"""The manifest in every cache subfolder the tool uses: one line per file stem the tool wrote there,
so `probe cache clear` deletes those files and nothing else (a cache folder may be shared)."""


def cache_root() -> Path:
    """$PROBE_CACHE_DIR, else $XDG_CACHE_HOME/clip-probe, else ~/.cache/clip-probe (not created)."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "clip-probe"
    )
    return Path(root)


def cache_dir(sub: str = "") -> Path:
    """The cache folder (or its subfolder `sub`, with its manifest), created on first use; a cache path
    that is a file or cannot be created is a ProbeError that says what to set."""
    path = cache_root() / sub if sub else cache_root()
    try:
        path.mkdir(parents=True, exist_ok=True)
        if sub:
            (path / MARKER).touch(exist_ok=True)
    except OSError as exc:
        raise ProbeError(
            f"cannot use {path} as the cache folder: {exc.strerror or exc}",
            hint=f"set {CACHE_ENV} to a writable folder",
        ) from exc
    return path


def cache_path(sub: str, stem: str) -> Path:
    """`<cache>/<sub>/<stem>`, recorded in the subfolder's manifest before anything is written there:
    files named `<stem>.<suffix>` (and their locks and temp files) are the tool's to delete."""
    folder = cache_dir(sub)
    if stem not in recorded_stems(folder):
        try:
            with open(folder / MARKER, "a", encoding="utf-8") as f:  # appends of one short line do not interleave
                f.write(stem + "\n")
        except OSError as exc:
            raise ProbeError(
                f"cannot use {folder} as a cache folder: {exc.strerror or exc}",
                hint=f"set {CACHE_ENV} to a writable folder",
            ) from exc
    return folder / stem


def recorded_stems(folder: Path) -> set[str]:
    """The file stems the tool recorded in a cache subfolder's manifest (none when it has none)."""
    try:
        text = (folder / MARKER).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    return {line for line in text.splitlines() if line and "/" not in line and line not in (".", "..")}


def tool_subfolders(root: Path) -> list[Path]:
    """Subfolders of the cache root that the tool uses (they hold its manifest)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and (p / MARKER).is_file())


def owned_files(folder: Path) -> list[Path]:
    """Files in a cache subfolder that the tool wrote: a recorded stem with a suffix, its lock, or an
    atomic write's temp file (`.<name>.*.tmp`). Everything else in the folder belongs to someone else."""
    stems = recorded_stems(folder)
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        name = path.name
        base = name[1:] if name.startswith(".") and name.endswith(".tmp") else name
        if any(base.startswith(stem + ".") for stem in stems):
            found.append(path)
    return found


@dataclass
class Cleared:
    """What `clear_cache` did: files removed, files kept because the tool did not write them, failures."""

    removed: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def clear_cache(folders: list[Path]) -> Cleared:
    """Delete the tool's own files in each folder, then its manifest and the folder if nothing else is
    left; a user's files stay, and a file that cannot be removed is reported, never skipped silently."""
    result = Cleared()
    for folder in folders:
        mine = owned_files(folder)
        for path in mine:
            try:
                path.unlink()
                result.removed.append(path)
            except OSError as exc:
                result.failed.append((path, exc.strerror or str(exc)))
        others = [p for p in sorted(folder.rglob("*")) if p.is_file() and p not in mine and p.name != MARKER]
        result.kept += others
        if not others and not any(p.parent == folder for p, _ in result.failed):
            with contextlib.suppress(OSError):  # a folder still holding something (an empty subfolder) stays
                (folder / MARKER).unlink(missing_ok=True)
                folder.rmdir()
    return result


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
    memo = cache_path("hashes", key).with_name(f"{key}.json")
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
    except OSError as exc:  # a read-only or vanished parent folder
        raise write_error(folder.parent, exc) from exc
    try:
        yield
    finally:
        lock.release()
