"""`probe models convert` records the source's activation; `ARCH@file.safetensors` honours it."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from tests.models import hfcache

SMALL_VIT_B_32 = {
    "embed_dim": 64,
    "vision_cfg": {"layers": 2, "width": 64, "head_width": 32, "image_size": 64},
    "text_cfg": {"width": 64, "heads": 2, "layers": 2},
}
TEXTS = ["a photo of a dog", "a red circle left of a blue square"]


@pytest.fixture
def small_b32(monkeypatch):
    """ViT-B-32 and ViT-B-32-quickgelu at reduced widths under their real names, for one test."""
    from open_clip import factory

    from probe.models.loading import _register_builtin_configs

    _register_builtin_configs()  # it rescans open_clip's registry once: before the small configs go in
    for arch in ("ViT-B-32", "ViT-B-32-quickgelu"):
        monkeypatch.setitem(factory._MODEL_CONFIGS, arch, hfcache._merge(factory._MODEL_CONFIGS[arch], SMALL_VIT_B_32))


def _archive(path, arch: str, seed: int = 0):
    """A TorchScript archive of a seeded random model, as OpenAI ships its checkpoints."""
    import open_clip

    torch.manual_seed(seed)
    model = open_clip.create_model(arch).eval()
    mask = model._buffers.pop("attn_mask")  # OpenAI's model keeps its causal mask as a plain attribute
    model.attn_mask = mask
    torch.jit.save(torch.jit.script(model), str(path))
    return model


@pytest.mark.slow
def test_openai_style_archive_converted_loads_with_quickgelu_under_the_plain_name(small_b32, invoke, tmp_path):
    import open_clip
    from safetensors import safe_open

    from probe.session import Session

    reference = _archive(tmp_path / "openai.pt", "ViT-B-32-quickgelu")
    out = tmp_path / "x.safetensors"
    result = invoke("models", "convert", tmp_path / "openai.pt", out, "--allow-pickle", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["activation"] == "quick_gelu"
    with safe_open(str(out), framework="pt") as f:
        assert f.metadata()["activation"] == "quick_gelu"
    with torch.no_grad():
        want = F.normalize(reference.encode_text(open_clip.get_tokenizer("ViT-B-32")(TEXTS)), dim=-1)
    plain = Session.open(f"ViT-B-32@{out}", device="cpu")  # the name without -quickgelu: honoured
    assert (plain.encode_text(TEXTS) - want).abs().max() <= 1e-5
    assert (Session.open(f"ViT-B-32-quickgelu@{out}", device="cpu").encode_text(TEXTS) - want).abs().max() <= 1e-5

    gelu = open_clip.create_model("ViT-B-32", pretrained=str(out)).eval()  # the weights under GELU: not the model
    with torch.no_grad():
        assert (F.normalize(gelu.encode_text(plain.tokenize(TEXTS)), dim=-1) - want).abs().max() > 1e-4


@pytest.mark.slow
def test_gelu_checkpoint_under_a_quickgelu_name_is_refused_in_one_line(small_b32, invoke, tmp_path):
    _archive(tmp_path / "laion.pt", "ViT-B-32")
    out = tmp_path / "g.safetensors"
    assert invoke("models", "convert", tmp_path / "laion.pt", out, "--allow-pickle").exit_code == 0
    result = invoke("--device", "cpu", "-m", f"ViT-B-32-quickgelu@{out}", "neighbours", "a dog", "--vocab", "world")
    assert result.exit_code == 1
    assert "converted from a checkpoint with GELU" in result.stderr and f"-m ViT-B-32@{out}" in result.stderr
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_bare_state_dict_records_no_activation(small_b32, invoke, tmp_path):
    import open_clip
    from safetensors import safe_open

    torch.save(open_clip.create_model("ViT-B-32").state_dict(), tmp_path / "sd.pt")
    out = tmp_path / "sd.safetensors"
    result = invoke("models", "convert", tmp_path / "sd.pt", out, "--allow-pickle", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["activation"] is None
    with safe_open(str(out), framework="pt") as f:
        assert "activation" not in f.metadata()
