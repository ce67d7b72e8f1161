import json

import pytest
import torch
from PIL import Image

from probe.errors import ProbeError, UsageError
from probe.files.atomic import atomic_write_text
from probe.files.images import png_bytes, write_png
from probe.files.names import inside, safe_name
from probe.files.sheets import caption_line_height, contact_grid, contact_sheet, wrap_caption


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
    with pytest.raises(ProbeError, match=f"cannot write {target}: disk full"):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_png_true_pixels_metadata_and_determinism(tmp_path):
    img = torch.zeros(3, 4, 4)
    img[0] = 0.5
    path = write_png(tmp_path / "a.png", img, {"prompt": "a red circle", "seed": 3})
    with Image.open(path) as im:
        assert im.getpixel((0, 0)) == (128, 0, 0)  # not stretched to 255
        assert im.info["prompt"] == "a red circle" and json.loads(im.info["seed"]) == 3
    assert png_bytes(img, {"a": 1}) == png_bytes(img.clone(), {"a": 1})


def test_atomic_write_uses_normal_permissions(tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644


def test_captions_wrap_at_spaces_and_fill_the_last_line_before_the_ellipsis():
    assert wrap_caption("s0 0.44 a red star | a blue circle:0.5", 12, len) == [
        "s0 0.44 a",
        "red star | a",
        "blue circ...",
    ]
    assert wrap_caption("  a red   star ", 12, len) == ["a red star"]
    assert wrap_caption("one two three four five six seven", 6, len) == ["one", "two", "thr..."]
    assert wrap_caption("one two three", 6, len, max_lines=1) == ["one..."]
    assert wrap_caption("", 6, len) == [] and wrap_caption("   ", 6, len) == []


def test_captions_split_words_too_long_for_a_line():
    assert wrap_caption("abcdefghijklmnop", 6, len) == ["abcdef", "ghijkl", "mnop"]
    assert wrap_caption("abcdefghijklmnopqrstu", 6, len) == ["abcdef", "ghijkl", "mno..."]
    calls = []

    def measure(text: str) -> int:
        calls.append(text)
        return len(text)

    wrap_caption("x" * 5000, 6, measure)
    assert len(calls) < 100  # bisection, not a scan of the word


def test_captions_always_terminate_and_refuse_nonsense_sizes():
    assert wrap_caption("abc", 6, lambda t: 10 * len(t)) == ["a", "b", "..."]  # glyphs wider than the cell
    with pytest.raises(ValueError):
        wrap_caption("ab", 0, len)
    with pytest.raises(ValueError):
        wrap_caption("ab", 6, len, max_lines=0)


def test_contact_sheet_draws_wrapped_captions_and_grows_to_fit_them():
    from PIL import ImageFont

    line = caption_line_height(ImageFont.load_default())
    image = torch.full((3, 8, 8), 0.5)
    short = contact_sheet([image, image], ["a", "b"], columns=2, cell=64)
    long = contact_sheet([image, image], ["a", "a purple cross | a white ring:0.5 | blurry:-0.3"], columns=2, cell=64)
    assert short.size == (128, 64 + line)
    assert long.size == (128, 64 + 3 * line)
    third_line = long.crop((64, 64 + 2 * line, 128, 64 + 3 * line)).convert("L")
    assert third_line.getextrema()[0] < 128  # text was drawn there, in the long caption's column
    assert long.crop((0, 64 + line, 64, 64 + 3 * line)).convert("L").getextrema()[0] == 255  # "a" needs one line
    assert contact_sheet([image], [""], cell=64).size == (64, 64)
    with pytest.raises(ValueError):
        contact_sheet([image, image], ["only one"], cell=64)


def test_contact_grid_keeps_each_image_in_its_row_and_column_under_headers():
    from PIL import ImageFont

    from probe.files.sheets import GRID_LABEL_WIDTH

    line = caption_line_height(ImageFont.load_default())
    red, blue = torch.zeros(3, 4, 4), torch.zeros(3, 4, 4)
    red[0], blue[2] = 1, 1
    long_prompt = "a red circle left of a blue square above a green star next to a small white ring"
    grid = contact_grid([[red, None], [None, blue]], ["a", long_prompt], ["seed 0", "seed 7"], cell=64)
    head = line + 4  # one line of column headers ("seed 0" fits a 64-pixel column)
    assert grid.size == (GRID_LABEL_WIDTH + 2 * 64, head + 2 * 64)
    assert grid.getpixel((GRID_LABEL_WIDTH + 32, head + 32)) == (255, 0, 0)  # row 0, seed 0
    assert grid.getpixel((GRID_LABEL_WIDTH + 96, head + 64 + 32)) == (0, 0, 255)  # row 1, seed 7
    assert grid.crop((GRID_LABEL_WIDTH + 64, head, GRID_LABEL_WIDTH + 128, head + 64)).getextrema()[0] == (255, 255)
    assert grid.crop((GRID_LABEL_WIDTH + 64, 0, GRID_LABEL_WIDTH + 128, head)).convert("L").getextrema()[0] < 128
    prompt_band = grid.crop((0, head + 64 + line + 2, GRID_LABEL_WIDTH, head + 128)).convert("L")
    assert prompt_band.getextrema()[0] < 128  # the long prompt wraps onto its second line and beyond
    with pytest.raises(ValueError):
        contact_grid([[red]], ["a", "b"], ["seed 0"])
