"""The Python API (`probe.invert`, `probe.neighbours`, `probe.shuffle_test`, `probe.score`) gives what
the commands give, on the same library functions, and renders safely in notebooks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import probe


def test_invert_matches_the_command_byte_for_byte(builtin_session, invoke, tmp_path):
    found = probe.invert(builtin_session, "a red star", seeds=[1], steps=4)
    assert [(inv.prompt, inv.seed, inv.status) for inv in found] == [("a red star", 1, "done")]
    result = invoke("-o", tmp_path, "--device", "cpu", "invert", "a red star", "--seeds", "1", "--steps", "4")
    assert result.exit_code == 0, result.output
    written = np.asarray(Image.open(tmp_path / "invert" / "a-red-star" / "seed-1.png"))
    (saved,) = found.save(tmp_path / "api")
    assert np.array_equal(np.asarray(Image.open(saved)), written)
    assert found._repr_html_().count("data:image/png;base64,") == 1


def test_neighbours_and_score_match_the_commands(builtin_session, invoke):
    api = probe.neighbours(builtin_session, ["a red star"], k=4)
    cli = json.loads(invoke("--device", "cpu", "neighbours", "a red star", "--k", "4", "--json").stdout)
    assert [n.word for n in api[0].neighbours] == [n["word"] for n in cli["results"][0]["neighbours"]]
    red = np.zeros((3, 8, 8), np.float32)
    red[0] = 1.0
    import torch

    scores = probe.score(builtin_session, [torch.from_numpy(red)], ["a red star", "a blue star"])
    assert scores.labels == ["a red star"] and scores.probs[0][0] > 0.5


def test_shuffle_report_and_html_escape(builtin_session):
    report = probe.shuffle_test(builtin_session, "a red star left of a blue circle", perturbations=["swap-relation"])
    assert report.row("swap-relation").n == 1
    html = probe.neighbours(builtin_session, ["<script>alert(1)</script>"], k=2)._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_unknown_attribute_names_the_api():
    with pytest.raises(AttributeError, match=r"probe\.api"):
        probe.no_such_probe  # noqa: B018  (the attribute access is what must raise)
    assert {"invert", "neighbours", "shuffle_test", "score"} <= set(probe.api())


def test_html_views_escape_every_caption_and_cell():
    """The notebook views' building blocks (image grids of inversions, tables) escape what they are given."""
    import torch

    from probe.markup import image_grid, table

    marker = "<i>x</i>"
    html = str(image_grid([torch.zeros(3, 4, 4)], [marker])) + str(table([marker], [[marker]], marker, marker))
    assert marker not in html
    assert html.count("&lt;i&gt;x&lt;/i&gt;") == 6  # the image's alt text and caption; header, cell, title, note
