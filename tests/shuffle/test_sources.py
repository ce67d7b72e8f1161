"""Input sources: prompt files, image/caption pairs, JSONL, invert sidecars, world scenes."""

from __future__ import annotations

import json

import pytest
import torch
from probe_shuffle import sources
from probe_shuffle.perturbations import perturb

from probe.errors import DataError, UsageError
from probe.files.atomic import write_json
from probe.files.images import write_png


def test_prompt_file_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("# header\na red circle\n\n  a blue star  \n")
    assert sources.read_prompt_file(path) == ["a red circle", "a blue star"]
    with pytest.raises(DataError, match="not found"):
        sources.read_prompt_file(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(DataError, match="no prompts"):
        sources.read_prompt_file(tmp_path / "empty.txt")


def test_jsonl_resolves_relative_images_and_names_bad_lines(tmp_path):
    write_png(tmp_path / "img" / "a.png", torch.full((3, 8, 8), 0.5))
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"image": "img/a.png", "caption": "a red circle"}) + "\n\n")
    pairs = sources.jsonl_pairs(path)
    assert pairs.captions == ["a red circle"] and pairs.images[0].size == (
        8,
        8,
    )  # a photo, for the model's own preprocessing
    path.write_text(json.dumps({"image": "img/a.png", "caption": "x"}) + "\n{oops\n")
    with pytest.raises(DataError, match=r"pairs.jsonl:2: not valid JSON"):
        sources.jsonl_pairs(path)
    path.write_text(json.dumps({"image": "img/a.png"}) + "\n")
    with pytest.raises(DataError, match="'image' and 'caption'"):
        sources.jsonl_pairs(path)


def test_images_take_captions_or_sidecar_prompts(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    write_png(a, torch.zeros(3, 8, 8))
    write_png(b, torch.ones(3, 8, 8), metadata={"prompt": "a blue star"})  # PNG text chunk
    write_json(a.with_suffix(".json"), {"prompt": "a red circle", "seed": 0})
    assert sources.image_files([a, b], []).captions == ["a red circle", "a blue star"]
    assert sources.image_files([a], ["given"]).captions == ["given"]
    with pytest.raises(UsageError, match="2 --image but 1 --caption"):
        sources.image_files([a, b], ["x"])
    c = tmp_path / "c.png"
    write_png(c, torch.zeros(3, 8, 8))
    with pytest.raises(UsageError, match="no caption for"):
        sources.image_files([c], [])


def test_invert_folder_reads_every_image_with_a_prompt(tmp_path):
    for i, prompt in enumerate(["a red circle", "a green star"]):
        write_png(tmp_path / "run" / f"img{i}.png", torch.rand(3, 8, 8))
        write_json(tmp_path / "run" / f"img{i}.json", {"prompt": prompt})
    write_png(tmp_path / "run" / "stray.png", torch.rand(3, 8, 8), metadata={"prompt": "no sidecar"})
    write_png(tmp_path / "run" / "img2.png", torch.rand(3, 8, 8))
    write_json(tmp_path / "run" / "img2.json", {"prompt": "a blue ring", "status": "nan"})
    pairs = sources.invert_outputs(tmp_path)
    assert pairs.captions == ["a red circle", "a green star"]
    with pytest.raises(DataError, match="no images with a prompt"):
        sources.invert_outputs(_empty(tmp_path))


def _empty(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    return folder


def test_world_pairs_are_seeded_true_and_perturbable():
    from probe.world.captions import ORDERED_RELATIONS, parse_caption

    pairs = sources.world_pairs(12, seed=1)
    assert pairs.images.shape == (12, 3, 64, 64)
    again = sources.world_pairs(12, seed=1)
    assert again.captions == pairs.captions and torch.equal(again.images, pairs.images)
    assert sources.world_pairs(12, seed=2).captions != pairs.captions
    for caption in pairs.captions:
        spec = parse_caption(caption)
        assert spec.relation in ORDERED_RELATIONS and spec.first.colour != spec.second.colour
        out = perturb(caption, ["swap-attributes", "swap-relation"])
        assert len(out["swap-attributes"]) == 1 and len(out["swap-relation"]) == 1
    only_left = sources.world_pairs(5, relations=["left of"])
    assert all(" left of " in c for c in only_left.captions)
    with pytest.raises(UsageError, match="unknown world relation"):
        sources.world_pairs(5, relations=["near"])
