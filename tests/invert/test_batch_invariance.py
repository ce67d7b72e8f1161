"""An image depends only on (model, prompt, seed, settings): the seed-0 image is the same bytes
whichever other images share its batch or chunk (CPU, one torch build and thread count)."""

import json
from pathlib import Path

import torch
from probe_invert.render import invert_items
from probe_invert.settings import load_preset


def test_seed_0_pixels_and_cosine_alone_and_in_a_batch_of_4(builtin_session):
    settings = load_preset("default", steps=4, copies=2)
    alone = invert_items(builtin_session, [("a red star", 0)], settings)[0]
    batch = invert_items(builtin_session, [("a red star", s) for s in range(4)], settings)
    assert torch.equal(alone.image, batch[0].image)
    assert alone.cosine == batch[0].cosine and alone.start_cosine == batch[0].start_cosine
    assert not torch.equal(batch[0].image, batch[1].image)  # the other seeds are other images


def test_seed_0_png_bytes_alone_and_with_seeds_0_to_3(invoke, tmp_path):
    pngs = []
    for sub, args in (("alone", ["--seeds", "0"]), ("batch", ["--seeds", "0-3", "--batch-size", "4"])):
        r = invoke(
            "--model", "shapes-tiny", "--device", "cpu", "--out", tmp_path / sub,
            "invert", "a red star", *args, "--steps", "4", "--copies", "2", "--json",
        )  # fmt: skip
        assert r.exit_code == 0, r.stderr
        pngs.append(Path(json.loads(r.stdout)["images"][0]["png"]))
    assert pngs[0].read_bytes() == pngs[1].read_bytes()
