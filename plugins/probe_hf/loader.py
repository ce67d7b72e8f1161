"""Hugging Face transformers CLIP checkpoints (`CLIPModel` folders saved with `save_pretrained`, or
cached hub repos such as openai/clip-vit-large-patch14) as a model kind: `hf-transformers:REPO_OR_FOLDER`.

`load` wraps the model in the interface open_clip models give a Session: `encode_text(tokens)`,
`encode_image(pixels)`, `visual.output_dim`, and a tokenizer called on a list of texts that returns
[N, context_length] ids and has `context_length` and `encode`. Needs the [hf] extra.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
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
    """A transformers CLIPModel behind open_clip's encode_text / encode_image interface, with the
    model's own zero-shot temperature (`logit_scale`, log-scaled as open_clip keeps it)."""

    def __init__(self, clip: Any, pad_id: int, eos_id: int | None) -> None:
        super().__init__()
        self.clip = clip
        self.visual = _Visual(clip)
        self.pad_id = pad_id
        self.eos_id = eos_id

    @property
    def logit_scale(self) -> torch.Tensor:
        return self.clip.logit_scale

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.visual(pixels)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        mask = attention_mask(tokens, self.pad_id, self.eos_id)
        return _features(self.clip.get_text_features(input_ids=tokens, attention_mask=mask))


def attention_mask(tokens: torch.Tensor, pad_id: int, eos_id: int | None) -> torch.Tensor:
    """1 up to and including each row's first end-of-text token, 0 after it: the mask the tokenizer
    itself gives. OpenAI's hub tokenizers pad with the end-of-text token, so "not the pad id" would
    hide the very token the text is pooled at. Rows without that token: every non-pad token."""
    not_pad = tokens != pad_id
    if eos_id is None:
        return not_pad.long()
    is_eos = tokens == eos_id
    first = is_eos.int().argmax(dim=1, keepdim=True)
    upto = torch.arange(tokens.shape[1], device=tokens.device)[None, :] <= first
    return torch.where(is_eos.any(dim=1, keepdim=True), upto, not_pad).long()


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
    from probe.files.checks import check_regular_file

    for path in sorted(folder.iterdir()):  # a FIFO or /dev/zero among the files read would never end
        if path.suffix in (".json", ".safetensors", ".bin", ".txt", ".model"):
            check_regular_file(path, "the model file", ModelError)
    weights = _weights_files(folder, allow_pickle)
    config = folder / "config.json"
    if not config.is_file():
        raise ModelError(f"no config.json in {folder}", hint="save the model with CLIPModel.save_pretrained")
    _check_model_type(folder, config, target)
    try:
        with _quiet_transformers():
            clip = CLIPModel.from_pretrained(str(folder), use_safetensors=weights[0].suffix == ".safetensors")
            hf_tok = AutoTokenizer.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many types for a bad folder
        raise ModelError(
            f"cannot load {PREFIX}{target}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            hint="a folder saved with CLIPModel.save_pretrained and its tokenizer",
        ) from exc
    _check_vocabulary(clip, hf_tok, target)
    clip = clip.float().eval().requires_grad_(False)
    pre = _preprocess(folder, int(clip.config.vision_config.image_size))
    context = int(clip.config.text_config.max_position_embeddings)
    pad = hf_tok.pad_token_id if hf_tok.pad_token_id is not None else 0
    model = TransformersCLIP(clip, pad, hf_tok.eos_token_id).eval().requires_grad_(False)
    raw = f"{PREFIX}:{hashlib.sha256(config.read_bytes()).hexdigest()[:16]}:" + ",".join(
        file_sha256(p) for p in weights
    )
    return LoadedModel(
        model,
        TransformersTokenizer(hf_tok, context),
        pre["size"],
        pre["mean"],
        pre["std"],
        fingerprint_id(target, raw),
        image_transform=pre["transform"],
    )


def _check_vocabulary(clip: Any, tokenizer: Any, target: str) -> None:
    """A tokenizer that gives ids past the text tower's token embedding is another model's: every
    prompt would fail inside the model (or, with a smaller one, silently mean other words)."""
    rows = int(clip.text_model.embeddings.token_embedding.num_embeddings)
    size = len(tokenizer)
    if size > rows:
        raise ModelError(
            f"{PREFIX}{target}: the tokenizer has {size:,} tokens but the model's token embedding only {rows:,}",
            hint="save the tokenizer the model was trained with into the folder",
        )


#: model types of other image-text families, with the open_clip spec that loads them instead
OPEN_CLIP_INSTEAD = {
    "siglip": "hf-hub:timm/ViT-B-16-SigLIP (the timm/ repository of the same model)",
    "siglip2": "hf-hub:timm/ViT-B-16-SigLIP2 (the timm/ repository of the same model)",
}


def _check_model_type(folder: Path, config: Path, target: str) -> None:
    """Refuse a checkpoint that is not a CLIPModel in one line, before transformers tries it (it
    would print a screenful and fail later with a misleading error)."""
    import json

    try:
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise ModelError(
            f"unreadable config.json in {folder}", hint="save the model with CLIPModel.save_pretrained"
        ) from exc
    if model_type in (None, "clip"):
        return
    instead = OPEN_CLIP_INSTEAD.get(str(model_type))
    raise ModelError(
        f"{PREFIX}{target} is a {model_type!r} checkpoint; {PREFIX} loads CLIP (CLIPModel) checkpoints only",
        hint=f"load it with open_clip instead, e.g. -m {instead}"
        if instead
        else "use an open_clip spec for this family (docs/models.md)",
    )


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers' own log lines (weights initialised, unused keys, type mismatches) kept off the
    terminal while a model loads; failures still reach the user as one ModelError line."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Loading weights" bars
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _image_processor(folder: Path, image_size: int) -> Any:
    """The folder's own image processor, as `CLIPProcessor.from_pretrained(folder)` builds it; without
    a preprocessor_config.json, CLIP's (shorter side to the input size, centre crop, OpenAI mean/std)."""
    import json

    from transformers import AutoImageProcessor, CLIPImageProcessor

    path = folder / "preprocessor_config.json"
    if not path.is_file():
        crop = {"height": image_size, "width": image_size}
        return CLIPImageProcessor(size={"shortest_edge": image_size}, crop_size=crop)
    hint = "save the model's processor with CLIPProcessor.save_pretrained, or delete the file to use CLIP's defaults"
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path} is not valid JSON", hint=hint) from exc
    if not isinstance(cfg, dict):
        raise ModelError(f"{path} holds a JSON {type(cfg).__name__}, not an object of settings", hint=hint)
    try:
        with _quiet_transformers():
            return AutoImageProcessor.from_pretrained(str(folder))
    except Exception as exc:  # transformers raises many types for a bad config
        raise ModelError(f"{path}: not a usable image processor config ({type(exc).__name__})", hint=hint) from exc


def _preprocess(folder: Path, image_size: int) -> dict:
    """Input size, mean, std and the photo transform (the processor's resize and crop, without
    normalisation: the session normalises), each checked on a small non-square image."""
    from PIL import Image

    from probe.plugin import checked_stats

    processor = _image_processor(folder, image_size)
    where = str(folder / "preprocessor_config.json")
    mean = checked_stats(getattr(processor, "image_mean", None), "image_mean", where)
    std = checked_stats(getattr(processor, "image_std", None), "image_std", where)

    def transform(image: Any) -> torch.Tensor:
        return processor(images=image, do_normalize=False, return_tensors="pt")["pixel_values"][0].float()

    try:
        probe_pixels = transform(Image.new("RGB", (image_size + 7, image_size)))
        ok = probe_pixels.dim() == 3 and probe_pixels.shape[0] == 3 and bool(torch.isfinite(probe_pixels).all())
    except Exception as exc:  # a config transformers accepted but cannot apply
        raise ModelError(f"{where}: the image processor fails on an image ({type(exc).__name__}: {exc})") from exc
    if not ok:
        raise ModelError(f"{where}: the image processor does not give one RGB image per photo")
    return {"size": image_size, "mean": mean, "std": std, "transform": transform}
