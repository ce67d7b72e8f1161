import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from probe.errors import UsageError
from probe.io import atomic_write_text, inside, png_bytes, safe_name, write_png


@pytest.mark.parametrize("prompt", ["../../x", "/etc/passwd", "..", "a/b\\c", "", "   ", "\x00evil"])
def test_safe_names_never_escape(tmp_path, prompt):
    name = safe_name(prompt)
    assert "/" not in name and "\\" not in name and name not in ("", ".", "..")
    assert inside(tmp_path, name + ".png").parent == tmp_path.resolve()


def test_safe_names_are_readable_and_distinct():
    assert safe_name("a red circle") == "a-red-circle"
    assert safe_name("A Red circle") != safe_name("a red circle")
    long = "word " * 40
    assert len(safe_name(long)) <= 69 and safe_name(long) != safe_name(long + "x")


def test_inside_refuses_escapes(tmp_path):
    with pytest.raises(UsageError):
        inside(tmp_path, "../x.png")


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_png_true_pixels_metadata_and_determinism(tmp_path):
    img = torch.zeros(3, 4, 4)
    img[0] = 0.5
    path = write_png(tmp_path / "a.png", img, {"prompt": "a red circle", "seed": 3})
    with Image.open(path) as im:
        assert im.getpixel((0, 0)) == (128, 0, 0)  # not stretched to 255
        assert im.text["prompt"] == "a red circle" and json.loads(im.text["seed"]) == 3
    assert png_bytes(img, {"a": 1}) == png_bytes(img.clone(), {"a": 1})


def test_atomic_write_uses_normal_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
