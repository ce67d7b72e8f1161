"""Hugging Face transformers CLIP checkpoints (`CLIPModel` folders saved with `save_pretrained`, or
cached hub repos such as openai/clip-vit-large-patch14) as a model kind: `hf-transformers:REPO_OR_FOLDER`.

`load` wraps the model in the interface open_clip models give a Session: `encode_text(tokens)`,
`encode_image(pixels)`, `visual.output_dim`, and a tokenizer called on a list of texts that returns
[N, context_length] ids and has `context_length` and `encode`. Needs the [hf] extra.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch

from probe.files.cache import file_sha256
from probe.plugin import LoadedModel, ModelError, fingerprint_id, hub_mode, network_available

HF_EXTRA_HINT = (
    "install the Hugging Face extra (in the clip-probe folder: pip install -e '.[hf]': transformers, sentencepiece); "
    "offline, also cache the text tower's config and tokenizer files (docs/models.md: 'Bringing your own weights')"
)

PREFIX = "hf-transformers:"


def _features(out: Any) -> torch.Tensor:
    """transformers 4 returns the projected features, 5 a model output holding them as pooler_output."""
    return out if torch.is_tensor(out) else out.pooler_output


class _Visual(torch.nn.Module):
    """The image tower as open_clip's `model.visual`: pixels -> projected features, with output_dim."""

    def __init__(self, clip: Any) -> None:
        super().__init__()
        self.clip = clip
        self.output_dim = int(clip.config.projection_dim)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return _features(self.clip.get_image_features(pixel_values=pixels))


class TransformersCLIP(torch.nn.Module):
    """A transformers CLIPModel behind open_clip's encode_text / encode_image interface."""

    def __init__(self, clip: Any, pad_id: int) -> None:
        super().__init__()
        self.clip = clip
        self.visual = _Visual(clip)
        self.pad_id = pad_id

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = (tokens != self.pad_id).long()
        return _features(self.clip.get_text_features(input_ids=tokens, attention_mask=mask))


class TransformersTokenizer:
    """A Hugging Face tokenizer called like open_clip's: texts -> [N, context_length] ids."""

    def __init__(self, tokenizer: Any, context_length: int) -> None:
        self.tokenizer = tokenizer
        self.context_length = context_length

    def __call__(self, texts: list[str] | str) -> torch.Tensor:
        texts = [texts] if isinstance(texts, str) else list(texts)
        return self.tokenizer(
            texts, padding="max_length", max_length=self.context_length, truncation=True, return_tensors="pt"
        ).input_ids

    def encode(self, text: str) -> list[int]:
        """Ids without the start and end tokens (for the prompt-length check)."""
        return list(self.tokenizer(text, add_special_tokens=False).input_ids)


def _weights_files(folder: Path, allow_pickle: bool) -> list[Path]:
    safe = sorted(folder.glob("*.safetensors"))
    if safe:
        return safe
    pickles = sorted(folder.glob("*.bin"))
    if pickles and not allow_pickle:
        raise ModelError(
            f"only pickle weights in {folder}", hint="convert them with `probe models convert`, or pass --allow-pickle"
        )
    if not pickles:
        raise ModelError(
            f"no weights file in {folder}", hint="a CLIPModel folder holds model.safetensors and config.json"
        )
    return pickles


def _resolve(target: str, online: bool) -> Path:
    """The local folder of a saved model: the path itself, or the cached snapshot of a hub repo."""
    folder = Path(target).expanduser()
    if folder.is_dir():
        return folder
    try:
        from huggingface_hub import snapshot_download

        with hub_mode(online):
            return Path(
                snapshot_download(target, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "*.bin"])
            )
    except Exception as exc:  # not cached offline, unknown repo, no network
        raise ModelError(
            f"no folder or cached Hugging Face repo {target!r}",
            hint="give a folder saved with save_pretrained, or download the repo on a connected machine "
            "(docs/models.md: 'Bringing your own weights')",
        ) from exc


def load(target: str, *, allow_pickle: bool) -> LoadedModel:
    """Load a transformers CLIPModel (folder or cached repo) for a Session."""
    try:
        from transformers import AutoTokenizer, CLIPModel
    except ImportError as exc:
        raise ModelError("hf-transformers: models need the Python package 'transformers'", hint=HF_EXTRA_HINT) from exc
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    online = not Path(target).expanduser().is_dir() and network_available()
    folder = _resolve(target, online)
    weights = _weights_files(folder, allow_pickle)
    config = folder / "config.json"
    if not config.is_file():
        raise ModelError(f"no config.json in {folder}", hint="save the model with CLIPModel.save_pretrained")
    try:
        clip = CLIPModel.from_pretrained(str(folder), use_safetensors=weights[0].suffix == ".safetensors")
        hf_tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many types for a bad folder
        raise ModelError(
            f"cannot load {PREFIX}{target}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="a folder saved with CLIPModel.save_pretrained and its tokenizer",
        ) from exc
    clip = clip.float().eval().requires_grad_(False)
    pre = _preprocess(folder, int(clip.config.vision_config.image_size))
    context = int(clip.config.text_config.max_position_embeddings)
    pad = hf_tok.pad_token_id if hf_tok.pad_token_id is not None else 0
    model = TransformersCLIP(clip, pad).eval().requires_grad_(False)
    raw = f"{PREFIX}:{hashlib.sha256(config.read_bytes()).hexdigest()[:16]}:" + ",".join(
        file_sha256(p) for p in weights
    )
    return LoadedModel(
        model, TransformersTokenizer(hf_tok, context), pre["size"], pre["mean"], pre["std"], fingerprint_id(target, raw)
    )


def _preprocess(folder: Path, image_size: int) -> dict:
    """Input size, mean and std from the folder's preprocessor_config.json (OpenAI's values without one)."""
    import json

    import open_clip

    mean, std = tuple(open_clip.OPENAI_DATASET_MEAN), tuple(open_clip.OPENAI_DATASET_STD)
    path = folder / "preprocessor_config.json"
    if path.is_file():
        cfg = json.loads(path.read_text())
        mean, std = tuple(cfg.get("image_mean", mean)), tuple(cfg.get("image_std", std))
    return {"size": image_size, "mean": tuple(float(v) for v in mean), "std": tuple(float(v) for v in std)}
