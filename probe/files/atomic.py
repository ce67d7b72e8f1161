"""Writes that never leave a half-written file: temp file, fsync, rename; JSON in and out."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from probe.errors import DataError, ProbeError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode() -> int:
    """The permissions a new file gets from the user's umask (temp-file writers make 0600 files)."""
    return 0o666 & ~_umask()


CACHE_MARKER = ".clip-probe-cache"
"""The manifest file in every cache subfolder the tool uses (see probe.files.cache): a write into
such a folder is a cache write, which -o does not move."""


def _in_cache(path: Path) -> bool:
    return (Path(path).parent / CACHE_MARKER).is_file()


def write_error(path: Path, exc: OSError) -> ProbeError:
    """A failed write as one line that names the path and what to do (full disk, read-only, a file in
    the way); a cache file's hint names PROBE_CACHE_DIR, since -o does not move the cache."""
    reason = exc.strerror or str(exc)
    in_the_way = exc.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR)  # a thing to move, wherever it is
    if _in_cache(path) and not in_the_way:
        room = "free some space, or set" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "set"
        hint = f"{room} PROBE_CACHE_DIR to a writable folder with room for the cache"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space, or write elsewhere with -o"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST):
        hint = "a file stands where a folder is needed: move it, or write elsewhere with -o"
    elif exc.errno == errno.EISDIR:
        hint = "a folder stands where the file goes: move it away"
    else:
        hint = "choose a writable folder with -o"
    return ProbeError(f"cannot write {path}: {reason}", hint=hint)


def check_writable(folder: Path) -> None:
    """Create `folder` if needed and prove a file can be written there, before any long work starts."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".probe-write-check.", suffix=".tmp")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise write_error(folder, exc) from exc


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    """Write via a temp file in the same folder and rename, so readers never see half a file;
    an OSError (disk full, read-only, a file in the way) becomes a ProbeError naming the path."""
    try:
        return _atomic_write(Path(path), data)
    except OSError as exc:
        raise write_error(Path(path), exc) from exc


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temp_files(folder: Path) -> int:
    """Delete the temp files of atomic writes that a killed process left under `folder` (call it only
    while holding the folder's lock, so no live writer's file is touched); returns how many."""
    stale = [p for p in Path(folder).rglob(".*.tmp") if p.is_file()] if Path(folder).is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


def atomic_write_text(path: Path, text: str) -> Path:
    """UTF-8 text written atomically (see `atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Indented JSON with sorted keys written atomically, so reruns write identical bytes."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    """Parse a JSON file, with a DataError naming the file and line on failure."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"file not found: {path}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        line = getattr(exc, "lineno", "?")
        raise DataError(f"{path}:{line}: not valid JSON ({exc.__class__.__name__})") from exc
