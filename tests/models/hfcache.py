"""A Hugging Face cache written by the tests: seeded random weights under a pretrained tag's real
repository id, in open_clip's own file layout, plus the tokenizer and text-tower config files a
family reads from the hub. With HF_HUB_OFFLINE=1 open_clip (and clip-probe) load from it exactly
as from a cache filled by a real download.

Reduced sizes: `SMALL` holds, per architecture, a shrunken config of the same family (fewer and
narrower layers, the smallest timm model of the same kind); `register_small` puts it under the
real name in open_clip's config registry for one test. Real sizes run in benchmarks/conformance.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

REVISION = "0" * 40  # the snapshot folder name; any commit-like hash works offline

_TEXT = {"width": 64, "heads": 2, "layers": 2}
_VIT = {"layers": 2, "width": 64, "head_width": 32}

#: architecture -> changes to its open_clip config (nested dicts are merged), keeping the family's
#: structure: same tower classes, pooling, activation, text mask and tokenizer; only sizes shrink.
SMALL: dict[str, dict[str, Any]] = {
    "ViT-B-16": {"embed_dim": 64, "vision_cfg": {**_VIT, "image_size": 64}, "text_cfg": _TEXT},
    "RN50": {"embed_dim": 64, "vision_cfg": {"layers": [1, 1, 1, 1], "width": 16, "image_size": 64}, "text_cfg": _TEXT},
    "convnext_base": {
        "embed_dim": 64,
        "vision_cfg": {"timm_model_name": "convnext_atto", "image_size": 64},
        "text_cfg": _TEXT,
    },
    "ViT-B-16-SigLIP": {
        "embed_dim": 192,
        "vision_cfg": {"timm_model_name": "vit_tiny_patch16_224"},
        "text_cfg": {**_TEXT, "vocab_size": 64},
    },
    "ViT-B-16-SigLIP2": {
        "embed_dim": 192,
        "vision_cfg": {"timm_model_name": "vit_tiny_patch16_224"},
        "text_cfg": {**_TEXT, "vocab_size": 64},
    },
    "EVA02-B-16": {"embed_dim": 64, "vision_cfg": {"timm_model_name": "eva02_tiny_patch14_224"}, "text_cfg": _TEXT},
    "MobileCLIP-S1": {
        "embed_dim": 64,
        "vision_cfg": {"timm_model_name": "fastvit_t8", "image_size": 64},
        "text_cfg": _TEXT,
    },
    "coca_ViT-B-32": {
        "embed_dim": 64,
        "vision_cfg": {**_VIT, "image_size": 64, "attn_pooler_heads": 2},
        "text_cfg": _TEXT,
        "multimodal_cfg": {**_TEXT, "attn_pooler_heads": 2},
    },
    "xlm-roberta-base-ViT-B-32": {"embed_dim": 64, "vision_cfg": {**_VIT, "image_size": 64}},
}

#: Hugging Face text towers: a small config of the same model type, written where AutoConfig looks.
HF_TEXT_CONFIGS: dict[str, dict[str, Any]] = {
    "xlm-roberta-base": {
        "model_type": "xlm-roberta",
        "architectures": ["XLMRobertaModel"],
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 64,
        "max_position_embeddings": 96,
        "pad_token_id": 1,
        "bos_token_id": 0,
        "eos_token_id": 2,
        "type_vocab_size": 1,
    },
}

WORDS = [
    "a",
    "photo",
    "of",
    "the",
    "dog",
    "cat",
    "red",
    "blue",
    "green",
    "circle",
    "square",
    "star",
    "triangle",
    "left",
    "right",
    "above",
    "below",
    "taylor",
    "swift",
    "person",
    "man",
    "woman",
    "doctor",
    "nurse",
]


def _merge(base: dict, changes: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        out[key] = (
            _merge(out.get(key, {}), value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def register_small(monkeypatch, arch: str) -> dict:
    """Replace `arch`'s config in open_clip's registry by its reduced-size copy for one test."""
    from open_clip import factory

    cfg = _merge(factory._MODEL_CONFIGS[arch], SMALL[arch])
    monkeypatch.setitem(factory._MODEL_CONFIGS, arch, cfg)
    return cfg


def hub_location(arch: str, tag: str) -> tuple[str, str]:
    """(repository id, file name) open_clip downloads a tag's weights from; the safetensors name
    open_clip looks for first."""
    import open_clip
    from open_clip.pretrained import HF_WEIGHTS_NAME, _get_safe_alternatives

    hub = open_clip.get_pretrained_cfg(arch, tag)["hf_hub"]
    repo, filename = hub.rsplit("/", 1)
    return repo, next(iter(_get_safe_alternatives(filename or HF_WEIGHTS_NAME)), filename or HF_WEIGHTS_NAME)


def repo_file(cache: Path, repo: str, filename: str) -> Path:
    """The snapshot path of `filename` in `repo` (folders and refs/main created)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(REVISION)
    path = folder / "snapshots" / REVISION / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


#: special-token layouts of the tokenizer families open_clip and transformers load: what a prompt
#: costs besides its words (T5 for SigLIP, Gemma for SigLIP2, XLM-R, NLLB's language code)
TEMPLATES = {
    "siglip-t5": "$A </s>",
    "siglip2-gemma": "<s> $A",
    "xlm-roberta": "<s> $A </s>",
    "nllb": "eng_Latn $A </s>",
}


def save_tokenizer(folder: Path, context_length: int = 64, template: str = "$A </s>") -> None:
    """A small word-level fast tokenizer (tokenizer.json + config) in `folder`: AutoTokenizer loads it.
    `template` lays out the special tokens around a text (TEMPLATES)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", "<unk>", "eng_Latn", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = [(t, vocab[t]) for t in ("<s>", "</s>", "eng_Latn") if t in template.split()]
    tok.post_processor = processors.TemplateProcessing(single=template, special_tokens=specials)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": context_length,
        "bos_token": "<s>",
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({k: v for k, v in config.items() if k.endswith("_token")})
    )


def write_tokenizer(cache: Path, repo: str, context_length: int = 64) -> None:
    """`save_tokenizer` into `repo`'s snapshot in the cache."""
    save_tokenizer(repo_file(cache, repo, "tokenizer.json").parent, context_length)
    if not repo_file(cache, repo, "config.json").is_file():  # a real download records the files a repo lacks
        missing = cache / f"models--{repo.replace('/', '--')}" / ".no_exist" / REVISION / "config.json"
        missing.parent.mkdir(parents=True, exist_ok=True)
        missing.touch()


def write_tag(cache: Path, arch: str, tag: str, seed: int = 0) -> Path:
    """Seeded random weights for ARCH@TAG at the path open_clip downloads them to, plus the tokenizer
    and text-tower config files the family reads from the hub. Returns the weights file."""
    import open_clip
    import torch
    from safetensors.torch import save_file

    cfg = open_clip.get_model_config(arch)
    text = cfg.get("text_cfg", {})
    if "hf_model_name" in text:
        repo_file(cache, text["hf_model_name"], "config.json").write_text(
            json.dumps(HF_TEXT_CONFIGS[text["hf_model_name"]])
        )
    if "hf_tokenizer_name" in text:
        write_tokenizer(cache, text["hf_tokenizer_name"], text.get("context_length", 77))
    quick_gelu = bool(open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu", False))
    torch.manual_seed(seed)
    model = open_clip.create_model(arch, pretrained=None, pretrained_text=False, force_quick_gelu=quick_gelu)
    with torch.no_grad():  # random, not init-shaped: zero-initialised parts (projections, biases) count too
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    path = repo_file(cache, *hub_location(arch, tag))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def use_cache(monkeypatch, cache: Path) -> None:
    """Point huggingface_hub (read at import) and child processes at `cache`, offline."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def save_clip_tokenizer(folder: Path, context_length: int = 77) -> None:
    """OpenAI's CLIP tokenizer as the hub ships it (vocab.json, merges.txt), built from open_clip's
    BPE tables: the same ids, and padding with the end-of-text token as openai/clip-vit-* repos do."""
    import gzip

    from open_clip.tokenizer import SimpleTokenizer, default_bpe
    from transformers import CLIPTokenizer

    names = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {names.get(tok, tok): i for tok, i in SimpleTokenizer().encoder.items()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    merges = gzip.decompress(Path(default_bpe()).read_bytes()).decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"),
        str(folder / "merges.txt"),
        pad_token="<|endoftext|>",
        model_max_length=context_length,
    )
    tokenizer.save_pretrained(folder)
