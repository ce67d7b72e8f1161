"""Run and invert folders: resume repairs missing or damaged images, reports survive them, and only
one run writes into a folder at a time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.conftest import FAST

EXPERIMENT = """\
name: rel
steps:
  - invert: {prompts: [a star, a circle], seeds: 0, settings: {steps: 2, size: 32, copies: 1}, batch: 2}
"""


@pytest.fixture
def run_folder(invoke, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT)
    result = invoke("-o", tmp_path, "--device", "cpu", "run", exp)
    assert result.exit_code == 0, result.output
    return exp, tmp_path / "runs" / "rel"


def images(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "images").rglob("*.png"))}


@pytest.mark.parametrize("damage", ["missing", "truncated"])
@pytest.mark.slow
def test_resume_recomputes_a_done_item_whose_image_is_missing_or_truncated(invoke, run_folder, damage):
    exp, folder = run_folder
    before = images(folder)
    victim = next((folder / "images").rglob("*.png"))
    if damage == "missing":
        victim.unlink()
    else:
        victim.write_bytes(victim.read_bytes()[:60])
    result = invoke("-o", folder.parent.parent, "--device", "cpu", "run", exp, "--resume", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["ran"] == 1 and out["counts"]["done"] == 2
    assert images(folder) == before


def test_report_notes_a_truncated_image_instead_of_failing(invoke, run_folder):
    _, folder = run_folder
    victim = next((folder / "images").rglob("*.png"))
    victim.write_bytes(victim.read_bytes()[:60])
    result = invoke("report", folder)
    assert result.exit_code == 0, result.output
    assert "1 image(s)" in result.stderr and "--resume" in result.stderr
    page = (folder / "report.html").read_text()
    assert "missing or damaged" in page


@pytest.mark.slow
def test_resumed_invert_recomputes_a_truncated_png(invoke, tmp_path):
    args = ["-o", tmp_path, "--device", "cpu", "invert", "a star", *FAST]
    assert invoke(*args).exit_code == 0
    png = tmp_path / "invert" / "a-star" / "seed-0.png"
    good = png.read_bytes()
    png.write_bytes(good[:60])
    again = invoke(*args, "--json")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["images"][0]["skipped"] is False
    assert png.read_bytes() == good


@pytest.mark.slow
def test_contact_sheet_holds_every_finished_image_of_the_folder(invoke, tmp_path):
    from PIL import Image

    for prompt in ("a star", "a circle"):
        assert invoke("-o", tmp_path, "--device", "cpu", "invert", prompt, *FAST).exit_code == 0
    again = invoke("-o", tmp_path, "--device", "cpu", "invert", "a star", *FAST)  # all skipped: the sheet keeps both
    assert again.exit_code == 0 and "1 of 1 images already finished" in again.stderr
    from probe.files.sheets import GRID_LABEL_WIDTH

    with Image.open(tmp_path / "invert" / "contact-sheet.png") as sheet:  # one row per prompt, one seed column
        assert sheet.width == GRID_LABEL_WIDTH + 128 and sheet.height >= 2 * 128


@pytest.mark.slow
def test_rerun_with_other_settings_does_not_replace_finished_images(invoke, tmp_path):
    assert invoke("-o", tmp_path, "--device", "cpu", "invert", "a star", *FAST).exit_code == 0
    png = tmp_path / "invert" / "a-star" / "seed-0.png"
    first = png.read_bytes()
    other = invoke("-o", tmp_path, "--device", "cpu", "invert", "a star", *FAST, "--set", "lr=0.3")
    assert other.exit_code == 2 and "other settings" in other.stderr and "-o" in other.stderr
    assert png.read_bytes() == first


@pytest.mark.parametrize("command", ["invert", "run"])
def test_a_second_run_into_a_busy_folder_fails_at_once(invoke, tmp_path, monkeypatch, command):
    from probe.cli.state import State
    from probe.files.cache import folder_lock

    monkeypatch.setattr(State, "session_for", lambda self, model: pytest.fail("the model loaded"))
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT)
    if command == "invert":
        busy, args = tmp_path / "invert", ["invert", "a star", *FAST]
    else:
        busy, args = tmp_path / "runs" / "rel", ["run", exp]
    busy.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(busy, "test"):
        result = invoke("-o", tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert f"another probe {command} is writing to {busy}" in result.stderr


def test_report_replaces_a_file_the_user_named_only_with_force(invoke, run_folder):
    """`probe report RUN -o FILE` naming an existing file: refused (exit 2, the file untouched);
    --force replaces it; the default RUN/report.html is the tool's own and is rewritten freely."""
    _, folder = run_folder
    mine = folder.parent / "notes.html"
    mine.write_text("my notes\n")
    refused = invoke("report", folder, "-o", mine)
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.strip() == f"Error: {mine} already exists (pick another name, or pass --force to replace it)"
    assert mine.read_text() == "my notes\n"
    assert invoke("report", folder, "-o", mine, "--force").exit_code == 0
    assert "<html" in mine.read_text().lower()
    for _ in range(2):
        assert invoke("report", folder).exit_code == 0
