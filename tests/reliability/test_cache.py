"""`probe cache clear` deletes only what the tool wrote; an unusable cache folder is a clear error."""

from __future__ import annotations

from pathlib import Path

from probe.files.cache import cache_dir, cache_path

SUBFOLDERS = ("hashes", "indexes", "text-snapshots", "vocabs", "my-plugin")


def _tool_files(sub: str) -> list[Path]:
    """What the tool writes in a cache subfolder: a file pair under one recorded stem, a lock, a temp file."""
    stem = cache_path(sub, "k0123456789abcdef")
    files = [stem.with_name(stem.name + s) for s in (".faiss", ".json", ".faiss.lock")]
    files.append(stem.with_name(f".{stem.name}.json.x1y2.tmp"))
    for f in files:
        f.write_bytes(b"tool")
    return files


def _user_files(folder: Path) -> list[Path]:
    """A user's own files beside the tool's: names a careless clear would take (same suffixes)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "my-own-file.txt", folder / "notes.faiss", folder / "k0123456789abcde.json"]
    (folder / "sub").mkdir(exist_ok=True)
    files.append(folder / "sub" / "thesis.txt")
    for f in files:
        f.write_text("years of work")
    return files


def test_clear_without_argument_deletes_only_what_the_tool_wrote(invoke):
    root = cache_dir()
    tool = [f for sub in SUBFOLDERS for f in _tool_files(sub)]
    user = [f for sub in SUBFOLDERS for f in _user_files(root / sub)] + _user_files(root / "mydata")
    (root / "notes.txt").write_text("years of work")
    result = invoke("cache", "clear")
    assert result.exit_code == 0, result.output
    assert [f for f in tool if f.exists()] == []
    assert all(f.read_text() == "years of work" for f in [*user, root / "notes.txt"])
    assert f"kept {len(SUBFOLDERS) * 4} file(s) clip-probe did not write" in result.output.replace("\n", " ")


def test_clear_of_one_subfolder_keeps_a_users_files_in_it(invoke):
    tool = _tool_files("indexes")
    user = _user_files(cache_dir() / "indexes")
    result = invoke("cache", "clear", "indexes")
    assert result.exit_code == 0, result.output
    assert [f for f in tool if f.exists()] == [] and all(f.exists() for f in user)


def test_a_project_folder_used_as_the_cache_keeps_its_files(invoke, tmp_path, monkeypatch):
    """PROBE_CACHE_DIR pointing at a project: its own indexes/ and hashes/ survive a real build and clear."""
    project = tmp_path / "project"
    user = _user_files(project / "indexes") + _user_files(project / "hashes")
    monkeypatch.setenv("PROBE_CACHE_DIR", str(project))
    assert invoke("neighbours", "star", "--vocab", "world", "--k", "2").exit_code == 0
    built = [p for p in (project / "indexes").iterdir() if p.suffix == ".faiss" and p.name != "notes.faiss"]
    assert built, "the neighbours run built no index"
    result = invoke("cache", "clear")
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in built) and all(f.read_text() == "years of work" for f in user)


def test_a_cache_that_cannot_be_cleared_says_so_and_exits_non_zero(invoke, monkeypatch):
    """A read-only cache: "cleared" with exit 0 would be a lie; the error names a file and the count."""
    tool = _tool_files("indexes")
    real_unlink = Path.unlink

    def refuse(self: Path, missing_ok: bool = False) -> None:
        if self.parent.name == "indexes":
            raise PermissionError(13, "Permission denied")
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    result = invoke("cache", "clear")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: could not remove 4 cached file(s) under ")
    assert "Permission denied" in result.stderr and "removed 0" in result.stderr
    assert all(f.exists() for f in tool)


def test_clear_refuses_a_folder_the_tool_did_not_write(invoke):
    root = cache_dir()
    (root / "mydata").mkdir()
    (root / "mydata" / "thesis.txt").write_text("years of work")
    result = invoke("cache", "clear", "mydata")
    assert result.exit_code == 2 and "no cache folder 'mydata'" in result.stderr
    assert (root / "mydata" / "thesis.txt").exists()


def test_cache_path_that_is_a_file_is_a_clear_error(invoke, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("PROBE_CACHE_DIR", str(blocker))
    result = invoke("neighbours", "star", "--vocab", "world")
    assert result.exit_code == 1, result.output
    assert str(blocker) in result.stderr and "PROBE_CACHE_DIR" in result.stderr
    assert "internal error" not in result.stderr


def test_a_full_disk_under_the_cache_points_to_probe_cache_dir(invoke, tmp_path, monkeypatch):
    """The index cannot be saved (no space left): -o would not move it, PROBE_CACHE_DIR does."""
    import errno
    import os

    import probe.files.atomic as atomic

    cache = tmp_path / "cache"
    monkeypatch.setenv("PROBE_CACHE_DIR", str(cache))
    real = os.replace

    def full(src, dst):
        if Path(dst).is_relative_to(cache):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", full)
    result = invoke("neighbours", "star", "--vocab", "world")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"cannot write {cache / 'indexes'}" in line and os.strerror(errno.ENOSPC) in line
    assert "PROBE_CACHE_DIR" in line and "-o" not in line
