"""`hf-transformers:` models: a transformers CLIPModel folder gives the same Session API and values."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tests.models import hfcache

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory):
    """A tiny CLIPModel saved with save_pretrained, with its tokenizer and image processor."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = tmp_path_factory.mktemp("hf-clip")
    text = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": 64,
        "max_position_embeddings": 32,
        "bos_token_id": 0,
        "pad_token_id": 1,
        "eos_token_id": 2,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 16,
    }
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16)).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        image_mean=[0.5, 0.4, 0.3],
        image_std=[0.2, 0.3, 0.4],
    ).save_pretrained(folder)
    hfcache.save_tokenizer(folder, context_length=32)
    return folder


def test_session_equals_the_transformers_model(clip_folder):
    from PIL import Image
    from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

    from probe.session import Session

    session = Session.open(f"hf-transformers:{clip_folder}", device="cpu")
    assert (session.image_size, session.context_length, session.embed_dim) == (32, 32, 16)
    assert session.describe()["fast_text"] is False
    model = CLIPModel.from_pretrained(str(clip_folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(clip_folder))
    texts = ["a red circle", "the dog left of a blue square", "star"]
    batch = tok(texts, padding="max_length", max_length=32, return_tensors="pt")
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    inputs = CLIPImageProcessor.from_pretrained(str(clip_folder))(
        images=Image.fromarray(pixels), do_resize=False, do_center_crop=False, return_tensors="pt"
    )
    with torch.no_grad():
        want_text = model.get_text_features(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        want_image = model.get_image_features(pixel_values=inputs.pixel_values)
    want_text = F.normalize(getattr(want_text, "pooler_output", want_text), dim=-1)
    want_image = F.normalize(getattr(want_image, "pooler_output", want_image), dim=-1)
    assert (session.encode_text(texts) - want_text).abs().max() <= 1e-5
    got_image = session.encode_image(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    assert (got_image - want_image).abs().max() <= 1e-5


def test_probes_run_and_errors_are_one_line(clip_folder, invoke, tmp_path, monkeypatch):
    monkeypatch.setenv("PROBE_DEVICE", "cpu")
    spec = f"hf-transformers:{clip_folder}"
    vocab = tmp_path / "words.txt"
    vocab.write_text("\n".join(hfcache.WORDS[:10]) + "\n")
    for args in (
        ["neighbours", "a red circle", "--vocab", vocab, "--k", "3", "--json"],
        ["invert", "a red circle", "--steps", "2", "--copies", "2", "--json"],
    ):
        result = invoke("--model", spec, "--out", tmp_path / "out", *args)
        assert result.exit_code == 0, result.stderr
        json.loads(result.stdout)
    missing = invoke("--model", "hf-transformers:someone/not-cached", "neighbours", "a")
    assert missing.exit_code == 1 and "no folder or cached Hugging Face repo 'someone/not-cached'" in missing.stderr
    assert missing.stderr.count("\n") == 1
