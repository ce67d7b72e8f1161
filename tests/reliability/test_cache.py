"""`probe cache clear` deletes only what the tool wrote; an unusable cache folder is a clear error."""

from __future__ import annotations

from probe.files.cache import cache_dir


def test_clear_without_argument_keeps_foreign_files(invoke):
    root = cache_dir()
    (cache_dir("indexes") / "x.faiss").write_bytes(b"1")
    (cache_dir("my-plugin") / "y.bin").write_bytes(b"2")
    (root / "mydata").mkdir()
    (root / "mydata" / "thesis.txt").write_text("years of work")
    (root / "notes.txt").write_text("mine")
    result = invoke("cache", "clear")
    assert result.exit_code == 0, result.output
    assert not (root / "indexes").exists() and not (root / "my-plugin").exists()
    assert (root / "mydata" / "thesis.txt").read_text() == "years of work"
    assert (root / "notes.txt").read_text() == "mine"


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
