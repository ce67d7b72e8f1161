"""Failed inversions are recorded `failed` with the reason, never `done`: the judge on tiny tensors,
the two failing recipes on the shipped model, and what `probe invert` shows and exits with."""

import json
from pathlib import Path

import pytest
import torch
from probe_invert import render
from probe_invert.render import judge
from probe_invert.settings import load_preset

JUDGE_INVERSIONS = True  # the verdict is what these tests check


def _varied(size: int = 8) -> torch.Tensor:
    return torch.linspace(0, 1, 3 * size * size).view(3, size, size)


def test_a_varied_image_above_floor_and_start_passes():
    assert judge(_varied(), 0.5, 0.1, 0.1) == ""


def test_below_the_floor_fails_with_the_numbers():
    assert judge(_varied(), 0.05, -0.5, 0.1) == "cosine 0.050 below the floor 0.1"


def test_no_better_than_the_start_fails_even_above_the_floor():
    assert judge(_varied(), 0.425, 0.425, 0.1) == "cosine 0.425 not above the start's 0.425"
    assert judge(_varied(), 0.43, 0.425, 0.1) == ""


def test_a_flat_grey_or_solid_colour_image_fails():
    grey = torch.full((3, 8, 8), 0.5)
    grey[0, 0, 0] = 0.51  # one level of noise: still flat
    assert judge(grey, 0.6, 0.1, 0.1) == "flat image (spread 0.3/255)"
    green = torch.zeros(3, 8, 8)
    green[1] = 1.0  # channels differ, but no channel varies across the image
    assert "flat image" in judge(green, 0.6, 0.1, 0.1)
    edge = torch.zeros(3, 8, 8)
    edge[:, :, 4:] = 1.0
    assert judge(edge, 0.6, 0.1, 0.1) == ""


def test_every_reason_is_listed_and_a_nan_cosine_fails():
    assert judge(torch.full((3, 4, 4), 0.5), -0.056, 0.6, 0.1) == (
        "cosine -0.056 below the floor 0.1; cosine -0.056 not above the start's 0.600; flat image (spread 0.0/255)"
    )
    assert judge(_varied(), float("nan"), 0.1, 0.1) == "no finite cosine"


def test_fft_with_the_default_priors_stays_grey_and_is_failed_with_a_hint(builtin_session):
    settings = load_preset("default", param="fft", steps=12, copies=2)
    result = render.invert_items(builtin_session, [("a star", 0)], settings)[0]
    assert result.status == "failed", result
    assert "flat image" in result.message and "--set priors.tv=0 --set priors.l1=0" in result.message


def test_the_paper_recipe_on_the_builtin_model_is_failed_not_done(builtin_session):
    settings = load_preset("paper", steps=40, copies=2)
    result = render.invert_items(builtin_session, [("a sunset", 0)], settings)[0]
    assert result.status == "failed" and result.cosine < settings.min_cosine, result
    assert "below the floor" in result.message


def test_a_working_run_on_the_builtin_model_is_done(builtin_session):
    settings = load_preset("default", steps=12, copies=2)
    result = render.invert_items(builtin_session, [("a red star", 0)], settings)[0]
    assert result.status == "done" and result.message == "", result
    assert result.cosine > max(settings.min_cosine, result.start_cosine)


FAST = ["--steps", "6", "--copies", "2"]


def _invert(invoke, out, *args):
    return invoke("--model", "shapes-tiny", "--device", "cpu", "--out", out, "invert", *args)


def _floor_preset(tmp_path: Path, floor: float) -> str:
    """The default recipe with another floor, as a user's YAML preset."""
    path = tmp_path / "strict.yaml"
    path.write_text(f"min_cosine: {floor}\n", encoding="utf-8")  # a preset names only what differs
    return str(path)


@pytest.mark.slow
def test_all_failed_exits_1_saves_each_with_its_reason_and_a_rerun_retries(invoke, tmp_path, monkeypatch):
    preset = _floor_preset(tmp_path, 0.99)  # out of reach: every image fails
    r = _invert(invoke, tmp_path / "out", "a red star", "--seeds", "0-1", "--preset", preset, *FAST, "--json")
    assert r.exit_code == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["failed"] == 2 and [i["status"] for i in report["images"]] == ["failed", "failed"]
    first = report["images"][0]
    assert "below the floor 0.99" in first["message"] and "failed: 'a red star' seed 0" in r.stderr
    sidecar = json.loads(Path(first["sidecar"]).read_text())
    assert sidecar["status"] == "failed" and "below the floor 0.99" in sidecar["message"]
    assert Path(first["png"]).is_file() and Path(report["contact_sheet"]).is_file()
    r = _invert(invoke, tmp_path / "out", "a red star", "--seeds", "0-1", "--preset", preset, *FAST, "--json")
    assert r.exit_code == 1 and "already finished" not in r.stderr
    assert [i["skipped"] for i in json.loads(r.stdout)["images"]] == [False, False]


def test_some_failed_exits_0_and_lists_them_and_the_sheet_says_failed(invoke, tmp_path, monkeypatch):
    from probe_invert import outputs

    real = render.invert_items

    def second_fails(session, items, settings, *, on_chunk, **kw):
        def mark(rows, inversions):  # before the CLI saves them, as a real failure would be
            for inversion in inversions:
                if inversion.seed == 1:
                    inversion.status, inversion.message = "failed", "cosine 0.050 below the floor 0.1"
            on_chunk(rows, inversions)

        return real(session, items, settings, on_chunk=mark, **kw)

    captions: list[str] = []
    real_grid = outputs.contact_grid

    def grid(cells, rows, heads, caps, cell=128):
        captions.extend(c for row in caps for c in row)
        return real_grid(cells, rows, heads, caps, cell=cell)

    monkeypatch.setattr(outputs, "contact_grid", grid)
    monkeypatch.setattr(render, "judge", lambda *args: "")  # only seed 1 fails, whatever 6 steps reach
    monkeypatch.setattr(render, "invert_items", second_fails)
    r = _invert(invoke, tmp_path, "a red star", "--seeds", "0-1", *FAST)
    assert r.exit_code == 0, r.stderr
    assert "1 of 2 image(s) failed" in r.stderr and "failed: 'a red star' seed 1" in r.stderr
    assert captions[0].startswith("cos ") and captions[1] == "FAILED: cosine 0.050 below the floor 0.1"
