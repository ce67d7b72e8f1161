"""Every open_clip family loads as open_clip itself loads it and runs every probe.

One pretrained tag per family, from a Hugging Face cache written by the tests (`hfcache`: seeded
random weights under the tag's real repository id, HF_HUB_OFFLINE=1), at reduced size (the family's
structure, smaller layers). `benchmarks/conformance.py` runs the same checks at real sizes.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tests.models import hfcache

pytest.importorskip("transformers")  # SigLIP and Hugging Face text towers need the [hf] extra

#: spec -> whether the exact fast text path applies (causal tower pooled at end-of-text)
FAMILIES = {
    "ViT-B-16@openai": True,  # ViT, QuickGELU
    "RN50@openai": True,  # ResNet, QuickGELU
    "convnext_base@laion400m_s13b_b51k": True,  # timm ConvNeXt
    "ViT-B-16-SigLIP@webli": False,  # non-causal text, last-token pooling, HF tokenizer
    "ViT-B-16-SigLIP2@webli": False,
    "EVA02-B-16@merged2b_s8b_b131k": True,  # timm EVA02 (rope)
    "MobileCLIP-S1@datacompdr": False,  # timm FastViT, text without causal mask
    "coca_ViT-B-32@laion2b_s13b_b90k": False,  # CoCa: CLS-token text embedding
    "xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k": False,  # Hugging Face text tower
}
#: Families whose five probe runs take tens of seconds each on 2 CPU cores (timm towers, 224-pixel
#: inputs): run with PROBE_SLOW_TESTS=1 (`make conformance`); the rest run in every test session.
SLOW_PROBES = {
    "RN50@openai",
    "convnext_base@laion400m_s13b_b51k",
    "ViT-B-16-SigLIP@webli",
    "ViT-B-16-SigLIP2@webli",
    "EVA02-B-16@merged2b_s8b_b131k",
    "MobileCLIP-S1@datacompdr",
}
TEXTS = ["a photo of the dog", "red circle left of blue square", "star", "a"]


@pytest.fixture
def cached(request, tmp_path, monkeypatch):
    """The family's spec, its tag's weights written into an offline Hugging Face cache."""
    spec = request.param
    arch, tag = spec.split("@")
    hfcache.register_small(monkeypatch, arch)
    cache = tmp_path / "hf"
    hfcache.use_cache(monkeypatch, cache)
    hfcache.write_tag(cache, arch, tag, seed=3)
    return spec


def _reference(spec: str):
    """open_clip's own model, preprocessing and tokenizer for ARCH@TAG (the tag's QuickGELU setting)."""
    import open_clip

    arch, tag = spec.split("@")
    quick_gelu = bool(open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu", False))
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, force_quick_gelu=quick_gelu)
    return model.eval(), preprocess, open_clip.get_tokenizer(arch)


def _photo(path, size: int, seed: int = 0):
    """A non-square 4:3 photo larger than the model's input (as a 480x360 snapshot is for 224 pixels),
    with structure at every scale so cropping and resampling both change the embedding."""
    rng = np.random.default_rng(seed)
    w, h = size * 2 + size // 7, size + size // 2
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    coarse = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR), dtype=np.int16)
    noise = rng.integers(-40, 41, (h, w, 3))
    Image.fromarray(np.clip(coarse + noise, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("cached", list(FAMILIES), indirect=True)
def test_embeddings_equal_open_clip(cached, tmp_path):
    """Tensors, texts, and a photo file: the photo goes through the model's own transform (resize
    mode, interpolation, crop) and equals open_clip's preprocess + encode_image."""
    from probe.files.images import load_image
    from probe.session import Session

    session = Session.open(cached, device="cpu")
    model, preprocess, tokenizer = _reference(cached)
    pixels = np.random.default_rng(0).integers(0, 256, (session.image_size, session.image_size, 3), dtype=np.uint8)
    with torch.no_grad():
        want_image = F.normalize(model.encode_image(preprocess(Image.fromarray(pixels)).unsqueeze(0)), dim=-1)
        want_text = F.normalize(model.encode_text(tokenizer(TEXTS)), dim=-1)
    got_image = session.encode_image(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    assert (got_image - want_image).abs().max() <= 1e-5
    assert (session.encode_text(TEXTS) - want_text).abs().max() <= 1e-5
    assert (session.encode_text(TEXTS, fast=False) - want_text).abs().max() <= 1e-5
    assert session.describe()["fast_text"] is FAMILIES[cached]
    photo = _photo(tmp_path / "photo.png", session.image_size)
    with torch.no_grad():
        want_photo = F.normalize(model.encode_image(preprocess(Image.open(photo)).unsqueeze(0)), dim=-1)
    assert (session.encode_image(session.prepare(photo)) - want_photo).abs().max() <= 1e-5
    squashed = session.encode_image(load_image(photo))  # the tensor path (a squash) fails this check
    assert (squashed - want_photo).abs().max() > 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("cached", list(FAMILIES), indirect=True)
def test_probe_score_of_a_photo_equals_open_clip(cached, invoke, tmp_path, monkeypatch):
    """`probe score PHOTO` reports open_clip's cosines (preprocess + encode_image against encode_text)."""
    monkeypatch.setenv("PROBE_DEVICE", "cpu")
    import open_clip

    model, preprocess, tokenizer = _reference(cached)
    size = open_clip.get_model_preprocess_cfg(model)["size"]
    photo = _photo(tmp_path / "photo.png", size if isinstance(size, int) else size[0], seed=1)
    with torch.no_grad():
        image = F.normalize(model.encode_image(preprocess(Image.open(photo)).unsqueeze(0)), dim=-1)
        text = F.normalize(model.encode_text(tokenizer(TEXTS)), dim=-1)
    result = invoke("--model", cached, "score", photo, *(a for t in TEXTS for a in ("-p", t)), "--json")
    assert result.exit_code == 0, result.stderr
    got = torch.tensor(json.loads(result.stdout)["cosine"])
    assert (got - image @ text.T).abs().max() <= 1e-5


def _probe_params() -> list:
    skip = pytest.mark.skipif(
        os.environ.get("PROBE_SLOW_TESTS") != "1", reason="slow on CPU: PROBE_SLOW_TESTS=1 runs it"
    )
    return [pytest.param(s, marks=skip) if s in SLOW_PROBES else s for s in FAMILIES]


@pytest.mark.slow
@pytest.mark.parametrize("cached", _probe_params(), indirect=True)
def test_every_probe_runs(cached, invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_DEVICE", "cpu")
    Image.new("RGB", (40, 40), (200, 30, 30)).save(tmp_path / "red.png")
    vocab = tmp_path / "words.txt"
    vocab.write_text("\n".join(hfcache.WORDS[:12]) + "\n")
    out = tmp_path / "out"
    runs = {
        "score": ["score", tmp_path / "red.png", "-p", "red", "-p", "blue", "--json"],
        "neighbours": ["neighbours", "a red circle", "--vocab", vocab, "--k", "3", "--json"],
        "shuffle-test": ["shuffle-test", "a red circle left of a blue square", "--json"],
        "invert": ["invert", "a red circle", "--steps", "2", "--copies", "2", "--json"],
        "bias": [
            "bias",
            "--prompts",
            "shapes",
            "--labels",
            "colours",
            "--n",
            "1",
            "--steps",
            "1",
            "--labeller",
            cached,
            "--json",
        ],
    }
    for name, args in runs.items():
        result = invoke("--model", cached, "--out", out, *args)
        assert result.exit_code == 0, f"{name}: {result.stderr}"
        json.loads(result.stdout)


def test_fingerprint_is_the_weights_content(tmp_path, monkeypatch):
    """Two different checkpoints under one tag name never share a fingerprint (caches keyed by it)."""
    from probe.models.loading import load_model
    from probe.models.specs import parse_model_spec

    hfcache.register_small(monkeypatch, "ViT-B-16")
    cache = tmp_path / "hf"
    hfcache.use_cache(monkeypatch, cache)
    spec = parse_model_spec("ViT-B-16@openai")
    hfcache.write_tag(cache, "ViT-B-16", "openai", seed=1)
    first = load_model(spec).fingerprint
    assert load_model(spec).fingerprint == first
    hfcache.write_tag(cache, "ViT-B-16", "openai", seed=2)
    assert load_model(spec).fingerprint != first


def test_hf_hub_repo_loads_from_the_cache_with_a_content_fingerprint(tmp_path, monkeypatch):
    import open_clip

    from probe.session import Session

    cache = tmp_path / "hf"
    hfcache.use_cache(monkeypatch, cache)
    cfg = hfcache._merge(open_clip.get_model_config("ViT-B-16"), hfcache.SMALL["ViT-B-16"])
    hfcache.repo_file(cache, "someone/tiny-clip", "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}})
    )
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = open_clip.CLIP(**cfg)

    weights = hfcache.repo_file(cache, "someone/tiny-clip", "open_clip_model.safetensors")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
    session = Session.open("hf-hub:someone/tiny-clip", device="cpu")
    assert session.mean.flatten().tolist() == [0.5, 0.5, 0.5]
    first = session.fingerprint
    save_file({k: v.contiguous() + 1 for k, v in model.state_dict().items()}, str(weights))
    assert Session.open("hf-hub:someone/tiny-clip", device="cpu").fingerprint != first


@pytest.mark.parametrize(
    "cached", ["ViT-B-16-SigLIP@webli", "xlm-roberta-base-ViT-B-32@laion5b_s13b_b90k"], indirect=True
)
def test_without_transformers_one_line_names_the_install(cached, invoke, monkeypatch, tmp_path):
    import sys

    from open_clip import hf_model

    monkeypatch.setitem(sys.modules, "transformers", None)  # `import transformers` now fails as if not installed
    monkeypatch.setattr(hf_model, "transformers", None)  # open_clip imported it at its own import
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    result = invoke("--model", cached, "score", tmp_path / "x.png", "-p", "a")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "needs the Python package 'transformers'" in result.stderr and "pip install -e '.[hf]'" in result.stderr
