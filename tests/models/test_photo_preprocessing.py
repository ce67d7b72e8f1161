"""Photos (image files, PIL images) go through the model's own preprocessing: open_clip's transform
for its `preprocess_cfg`, the built-in model's centred square. Tensors keep the plain resize."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.conftest import TINY_CFG


def _photo(path, w: int, h: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 1, w // 4 + 1, 3), dtype=np.uint8)
    coarse = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR), dtype=np.int16)
    noisy = np.clip(coarse + rng.integers(-30, 31, (h, w, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(path)
    return path


def _local_dir(folder, preprocess_cfg: dict, seed: int = 1):
    import open_clip
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CFG, "preprocess_cfg": preprocess_cfg}))
    torch.manual_seed(seed)
    model = open_clip.CLIP(**TINY_CFG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "cfg",
    [
        {"resize_mode": "shortest", "interpolation": "bicubic"},
        {"resize_mode": "longest", "interpolation": "bilinear", "fill_color": 127},
        {"resize_mode": "squash", "interpolation": "bilinear", "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.75]},
    ],
    ids=["shortest", "longest", "squash"],
)
def test_photo_follows_the_models_preprocess_cfg(tmp_path, cfg):
    """Each resize mode and interpolation as open_clip's own `preprocess` applies it (<= 1e-5)."""
    import open_clip

    from probe.session import Session

    folder = _local_dir(tmp_path / "model", cfg)
    session = Session.open(f"local-dir:{folder}", device="cpu")
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")
    photo = _photo(tmp_path / "wide.png", 150, 70)
    with torch.no_grad():
        want = F.normalize(model.eval().encode_image(preprocess(Image.open(photo)).unsqueeze(0)), dim=-1)
    assert (session.encode_image(session.prepare(photo)) - want).abs().max() <= 1e-5
    pil = Image.open(photo)  # a PIL image (Python API, uploads) goes the same way as its file
    assert torch.equal(session.prepare(pil), session.prepare(photo))


def test_tensors_keep_the_plain_resize(tiny_session):
    """An image the probes made (a tensor) is resized as it is: no crop, whatever the model's transform."""
    wide = torch.rand(3, 20, 50)
    assert torch.equal(tiny_session.prepare(wide), tiny_session.resize(wide))


def test_builtin_model_square_images_are_unchanged_and_photos_keep_their_centre(builtin_session, tmp_path):
    """shapes-tiny saw square renders only: a square photo is resized exactly as before (a tensor of its
    pixels); a wide one is cut to its centred square first, so shapes keep their proportions."""
    from probe.files.images import load_image

    square = _photo(tmp_path / "square.png", 90, 90)
    assert torch.equal(builtin_session.prepare(square), builtin_session.resize(load_image(square)))
    wide = _photo(tmp_path / "wide.png", 130, 90, seed=2)
    centre = load_image(wide)[:, :, 20:110]
    assert torch.equal(builtin_session.prepare(wide), builtin_session.resize(centre))


@pytest.mark.slow
def test_score_api_takes_photos_through_the_models_preprocessing(tmp_path):
    import probe
    from probe.files.images import load_image
    from probe.scores import zero_shot

    folder = _local_dir(tmp_path / "model", {"resize_mode": "shortest"})
    session = probe.open(f"local-dir:{folder}", device="cpu")
    photo = _photo(tmp_path / "wide.png", 120, 60)
    result = probe.score(session, [photo], ["a red circle", "a blue star"])
    cos, _ = zero_shot(session, session.prepare(photo), ["a red circle", "a blue star"])
    assert torch.tensor(result.cosine).sub(cos).abs().max() == 0
    squashed, _ = zero_shot(session, load_image(photo), ["a red circle", "a blue star"])
    assert torch.tensor(result.cosine).sub(squashed).abs().max() > 1e-6


@pytest.mark.slow
@pytest.mark.parametrize(
    ("cfg", "words"),
    [
        ({"mean": "abc"}, "mean is not three numbers"),
        ({"std": [0.5, 0.0, 0.5]}, "std must be three positive numbers"),
        ({"resize_mode": "zoom"}, "preprocess_cfg is not valid"),
        ({"interpolation": "lanczos"}, "preprocess_cfg is not valid"),
    ],
)
def test_invalid_preprocess_cfg_is_one_line(tmp_path, invoke, cfg, words):
    folder = _local_dir(tmp_path / "model", cfg)
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    result = invoke("--device", "cpu", "--model", f"local-dir:{folder}", "score", tmp_path / "x.png", "-p", "a")
    assert result.exit_code == 1, result.stderr
    assert words in result.stderr and "internal error" not in result.stderr
    assert result.stderr.count("\n") == 1
