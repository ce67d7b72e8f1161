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


@pytest.fixture(scope="module")
def hub_style_folder(tmp_path_factory):
    """A CLIPModel shaped as openai/clip-vit-base-patch32 is on the hub (legacy special-token ids
    0/2/1, QuickGELU, 49,408-token vocabulary, 77-token context, a tokenizer that pads with the
    end-of-text token), at small widths, saved with save_pretrained."""
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path_factory.mktemp("hub-clip")
    text = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "vocab_size": 49408,
        "max_position_embeddings": 77,
        "hidden_act": "quick_gelu",
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
        "hidden_act": "quick_gelu",
    }
    torch.manual_seed(1)
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16, logit_scale_init_value=3.0))
    with torch.no_grad():
        model.logit_scale.fill_(3.3)  # not the 100 a fixed temperature would use
    model.save_pretrained(folder)
    hfcache.save_clip_tokenizer(folder)
    return folder


@pytest.mark.slow
def test_hub_style_text_tower_equals_get_text_features(hub_style_folder):
    from transformers import AutoTokenizer, CLIPModel

    from probe.session import Session

    session = Session.open(f"hf-transformers:{hub_style_folder}", device="cpu")
    model = CLIPModel.from_pretrained(str(hub_style_folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(hub_style_folder))
    assert tok.pad_token_id == tok.eos_token_id == 49407  # the hub's layout: padding is end-of-text
    texts = ["a photo of a dog", "an orange ring on a black background, photographed at dusk", "star"]
    batch = tok(texts, padding=True, return_tensors="pt")
    assert torch.equal(session.tokenize(texts)[:, : batch.input_ids.shape[1]], batch.input_ids)
    with torch.no_grad():
        want = model.get_text_features(**batch)
    want = F.normalize(getattr(want, "pooler_output", want), dim=-1)
    assert (session.encode_text(texts) - want).abs().max() <= 1e-5


@pytest.mark.slow
def test_zero_shot_probabilities_are_the_hf_models_own(hub_style_folder):
    from transformers import AutoTokenizer, CLIPModel

    from probe.scores import zero_shot
    from probe.session import Session

    session = Session.open(f"hf-transformers:{hub_style_folder}", device="cpu")
    model = CLIPModel.from_pretrained(str(hub_style_folder)).eval()
    tok = AutoTokenizer.from_pretrained(str(hub_style_folder))
    prompts = ["a red circle", "a blue square", "a green star"]
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pixels = (images - torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]) / torch.tensor(
        [0.26862954, 0.26130258, 0.27577711]
    )[:, None, None]
    with torch.no_grad():
        out = model(**tok(prompts, padding=True, return_tensors="pt"), pixel_values=pixels)
    _, probs = zero_shot(session, images, prompts)
    assert (probs - out.logits_per_image.softmax(dim=-1)).abs().max() <= 1e-5


def test_zero_shot_probabilities_are_shapes_tiny_own():
    """The built-in model: softmax of open_clip's own logits (its learned scale, not a fixed 100)."""
    from probe.scores import zero_shot
    from probe.session import Session

    session = Session.open("shapes-tiny", device="cpu")
    prompts = ["a red circle", "a blue square", "a green star"]
    images = torch.rand(2, 3, session.image_size, session.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        image_features, text_features, scale = session.model(session.preprocess(images), session.tokenize(prompts))[:3]
    assert abs(float(scale) - 100.0) > 1e-3  # a test that a fixed 100 would fail
    want = (scale * image_features @ text_features.T).softmax(dim=-1)
    _, probs = zero_shot(session, images, prompts)
    assert (probs - want).abs().max() <= 1e-5


def test_siglip_folder_is_one_line_naming_the_open_clip_spec(tmp_path, invoke):
    from transformers import SiglipConfig, SiglipModel

    small = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = SiglipConfig(
        text_config={**small, "vocab_size": 64}, vision_config={**small, "image_size": 32, "patch_size": 16}
    )
    SiglipModel(config).save_pretrained(tmp_path / "siglip")
    hfcache.save_tokenizer(tmp_path / "siglip", context_length=64)
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    result = invoke("--model", f"hf-transformers:{tmp_path / 'siglip'}", "score", tmp_path / "x.png", "-p", "a")
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert "is a 'siglip' checkpoint" in result.stderr and "hf-hub:timm/ViT-B-16-SigLIP" in result.stderr


def test_attention_mask_ends_at_the_first_end_of_text_token():
    from probe_hf.loader import attention_mask

    pad_is_eos = torch.tensor([[49406, 5, 7, 49407, 49407, 49407], [49406, 49407, 49407, 49407, 49407, 49407]])
    assert attention_mask(pad_is_eos, 49407, 49407).tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]]
    own_pad = torch.tensor([[0, 5, 2, 1, 1], [0, 5, 6, 7, 2]])
    assert attention_mask(own_pad, 1, 2).tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert attention_mask(torch.tensor([[5, 6, 1]]), 1, None).tolist() == [[1, 1, 0]]


def _wide_photo(path, w: int = 75, h: int = 50):
    rng = np.random.default_rng(5)
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_probe_score_of_a_photo_equals_the_checkpoints_processor(clip_folder, invoke, tmp_path, monkeypatch):
    """A non-square photo goes through the folder's own image processor (as CLIPProcessor.from_pretrained
    builds it: shorter side, centre crop, its mean/std): `probe score` reports the model's own cosines."""
    from PIL import Image
    from transformers import CLIPModel, CLIPProcessor

    monkeypatch.setenv("PROBE_DEVICE", "cpu")
    photo = _wide_photo(tmp_path / "wide.png")
    texts = ["a red circle", "the dog left of a blue square"]
    model = CLIPModel.from_pretrained(str(clip_folder)).eval()
    inputs = CLIPProcessor.from_pretrained(str(clip_folder))(
        text=texts, images=Image.open(photo), padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model(**inputs)
    want = F.normalize(out.image_embeds, dim=-1) @ F.normalize(out.text_embeds, dim=-1).T
    result = invoke(
        "--model", f"hf-transformers:{clip_folder}", "score", photo, "-p", texts[0], "-p", texts[1], "--json"
    )
    assert result.exit_code == 0, result.stderr
    got = torch.tensor(json.loads(result.stdout)["cosine"])
    assert (got - want).abs().max() <= 1e-5
    from probe.files.images import load_image
    from probe.session import Session

    session = Session.open(f"hf-transformers:{clip_folder}", device="cpu")
    want_image = F.normalize(out.image_embeds, dim=-1)
    assert (session.encode_image(session.prepare(photo)) - want_image).abs().max() <= 1e-5
    assert (session.encode_image(load_image(photo)) - want_image).abs().max() > 1e-5  # a squash is not it


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "words"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "holds a JSON list"), ('{"image_mean": "abc"}', "image_mean")],
)
def test_invalid_preprocessor_config_is_one_line(clip_folder, tmp_path, invoke, content, words):
    import shutil

    folder = tmp_path / "clip"
    shutil.copytree(clip_folder, folder)
    (folder / "preprocessor_config.json").write_text(content)
    photo = _wide_photo(tmp_path / "wide.png")
    result = invoke("--device", "cpu", "--model", f"hf-transformers:{folder}", "score", photo, "-p", "a")
    assert result.exit_code == 1, result.stderr
    assert words in result.stderr and "internal error" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_tokenizer_larger_than_the_token_embedding_is_one_line(clip_folder, tmp_path, invoke):
    """Another model's tokenizer gives ids past the embedding table: refused at load, not an
    IndexError inside the first prompt."""
    import shutil

    folder = tmp_path / "clip"
    shutil.copytree(clip_folder, folder)
    spec = json.loads((folder / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    vocab.update({f"word{i}": len(vocab) + i for i in range(64)})
    (folder / "tokenizer.json").write_text(json.dumps(spec))
    result = invoke("--device", "cpu", "--model", f"hf-transformers:{folder}", "neighbours", "a red star")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"the tokenizer has {len(vocab)} tokens but the model's token embedding only 64" in line, line
    assert "internal error" not in line
