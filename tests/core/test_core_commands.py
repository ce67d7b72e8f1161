"""`probe models`, `probe cache list | clear` and `probe score`: what they print, and their error exits."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


def test_models_lists_the_builtin_models_with_the_default_first(invoke):
    from probe.models.specs import BUILTIN_MODELS, DEFAULT_MODEL

    names = json.loads(invoke("models", "--json").stdout)
    assert names[0] == DEFAULT_MODEL == "shapes-tiny"
    assert set(BUILTIN_MODELS) <= set(names)
    table = invoke("models")
    assert table.exit_code == 0
    row = next(line for line in table.stdout.splitlines() if "shapes-tiny" in line)
    assert "default" in row and BUILTIN_MODELS["shapes-tiny"]["about"][:20] in table.stdout


def test_models_refuses_an_unknown_option(invoke):
    result = invoke("models", "--colour")
    assert result.exit_code == 2 and "No such option" in result.output


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    """A cache folder holding two subfolders of files and a lock file."""
    from probe.files.cache import cache_path

    root = tmp_path / "cache"
    monkeypatch.setenv("PROBE_CACHE_DIR", str(root))
    world = cache_path("indexes", "world")
    world.with_name("world.faiss").write_bytes(b"x" * 1500)
    world.with_name("world.faiss.lock").write_bytes(b"")
    cache_path("text", "snap").with_name("snap.json").write_bytes(b"{}")
    return root


def test_cache_list_shows_every_file_with_its_size_but_not_locks(invoke, cache):
    data = json.loads(invoke("cache", "list", "--json").stdout)
    assert data == {
        "folder": str(cache),
        "items": [{"path": "indexes/world.faiss", "bytes": 1500}, {"path": "text/snap.json", "bytes": 2}],
    }
    table = invoke("cache", "list")
    assert table.exit_code == 0
    assert "indexes/world.faiss" in table.stdout and "0.00 MB" in table.stdout and "lock" not in table.stdout


def test_cache_list_of_an_unusable_cache_folder_is_one_line(invoke, monkeypatch, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("PROBE_CACHE_DIR", str(tmp_path / "file"))
    result = invoke("cache", "list")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: cannot use {tmp_path / 'file'} as the cache folder: File exists")
    assert "PROBE_CACHE_DIR" in result.stderr and (tmp_path / "file").read_text() == "not a folder"


def test_cache_clear_one_subfolder_keeps_the_rest(invoke, cache):
    result = invoke("cache", "clear", "indexes")
    assert result.exit_code == 0, result.output
    assert f"cleared 2 file(s) in {cache / 'indexes'}" in result.output.replace("\n", "")
    assert not (cache / "indexes").exists()
    assert (cache / "text" / "snap.json").read_bytes() == b"{}"


@pytest.mark.parametrize("what", ["..", "../outside", "link", "nope", "text/snap.json"])
def test_cache_clear_refuses_anything_but_a_folder_inside_the_cache(invoke, cache, what):
    outside = cache.parent / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    os.symlink(outside, cache / "link")
    result = invoke("cache", "clear", what)
    assert result.exit_code == 2
    assert f"no cache folder {what!r} under {cache}" in result.stderr and "Traceback" not in result.output
    assert (outside / "keep.txt").read_text() == "mine"
    assert (cache / "indexes" / "world.faiss").stat().st_size == 1500 and (cache / "text" / "snap.json").is_file()


def _solid(tmp_path: Path, name: str, size: tuple[int, int], rgb: tuple[int, int, int]) -> Path:
    from PIL import Image

    Image.new("RGB", size, rgb).save(tmp_path / name)
    return tmp_path / name


def test_score_prints_the_cosines_the_model_gives(invoke, tiny_spec, tiny_session, tmp_path):
    import torch

    red, blue = _solid(tmp_path, "red.png", (20, 30), (255, 0, 0)), _solid(tmp_path, "blue.png", (40, 40), (0, 0, 255))
    result = invoke("-m", tiny_spec, "score", red, blue, "-p", "a red square", "-p", "a blue circle", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    # the same numbers straight from the open_clip model: a solid image resizes to the same solid image
    model, size = tiny_session.model, tiny_session.image_size
    pixels = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).view(2, 3, 1, 1).expand(2, 3, size, size)
    with torch.no_grad():
        image = torch.nn.functional.normalize(
            model.encode_image((pixels - tiny_session.mean) / tiny_session.std), dim=-1
        )
        text = torch.nn.functional.normalize(
            model.encode_text(tiny_session.tokenize(["a red square", "a blue circle"])), dim=-1
        )
    want = image @ text.T
    assert torch.allclose(torch.tensor(data["cosine"]), want, atol=1e-4)
    probs = torch.softmax(want * model.logit_scale.exp(), dim=-1)
    assert torch.allclose(torch.tensor(data["probs"]), probs, atol=1e-3)
    assert data["labels"] == [["a red square", "a blue circle"][int(i)] for i in probs.argmax(-1)]
    table = invoke("-m", tiny_spec, "score", red, "-p", "a red square", "-p", "a blue circle")
    assert table.exit_code == 0 and "red.png" in table.stdout
    assert f"{data['cosine'][0][0]:.3f}" in table.stdout and f"{data['cosine'][0][1]:.3f}" in table.stdout


def test_score_of_a_missing_image_is_one_line(invoke, tiny_spec, tmp_path):
    result = invoke("-m", tiny_spec, "score", tmp_path / "nope.png", "-p", "a")
    assert result.exit_code == 1 and "nope.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
