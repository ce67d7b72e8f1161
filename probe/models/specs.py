"""Model specs: one syntax for built-in, open_clip-tagged, hub, local and random models.

Syntax (documented in docs/models.md):
  shapes-tiny                      a built-in model with its shipped weights (the default)
  ARCH@TAG                         an open_clip architecture with a pretrained tag (ViT-B-16@openai)
  ARCH@random                      random initialisation (seeded, deterministic): timing and tests
  ARCH@/path/weights.safetensors   an architecture with a local checkpoint file
  hf-hub:org/repo                  an open_clip model on the Hugging Face hub (cache only, offline)
  local-dir:/path/folder           a folder with open_clip_config.json and weights
  hf-transformers:REPO_OR_FOLDER   a Hugging Face transformers CLIPModel (folder or cached repo)
This module only parses and lists; loading lives in `probe.models.loading` so listing stays torch-free.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from probe.errors import ModelError
from probe.models.builtin import BUILTIN_MODELS, DEFAULT_MODEL

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
WEIGHT_SUFFIXES = (".safetensors", *PICKLE_SUFFIXES)

SpecKind = Literal["builtin", "pretrained", "random", "file", "hf-hub", "local-dir", "plugin"]


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec; `text` is what the user typed, kept for messages and sidecars."""

    kind: SpecKind
    arch: str
    weights: str | None
    text: str


def _open_clip_archs() -> list[str]:
    import open_clip  # light enough (no weights), but only imported when a spec is parsed

    return list(open_clip.list_models())


def _pretrained_tags(arch: str) -> list[str]:
    import open_clip

    return list(open_clip.list_pretrained_tags_by_model(arch))


def _plugin_prefixes() -> list[str]:
    """Spec prefixes that plugins' model loaders claim (`register_model_loaders`), longest first."""
    from probe.registry import model_loaders

    return sorted(model_loaders(), key=len, reverse=True)


def _plugins_off_hint() -> str:
    """Names the plugins that are not running (one may provide a loader for this spec), or ""."""
    from probe.registry import current

    registry = current()
    return registry.why_missing() if registry.unavailable() else ""


def _suggest(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
    if not close:
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[c] for c in difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=0.5)]
    return f"did you mean {', '.join(close)}?" if close else "run `probe models` to list known models"


def parse_model_spec(text: str) -> ModelSpec:
    """Turn a user's model string into a spec, with suggestions when the name is unknown."""
    text = text.strip()
    if not text:
        raise ModelError("empty model name", hint=f"try --model {DEFAULT_MODEL}")
    for prefix in _plugin_prefixes():
        if text.startswith(prefix):
            return ModelSpec("plugin", prefix, text[len(prefix) :], text)
    for prefix, example in (("hf-hub:", "hf-hub:org/repo"), ("local-dir:", "local-dir:/path/folder")):
        if text.startswith(prefix) and not text[len(prefix) :].strip():
            raise ModelError(f"nothing after {prefix!r} in model spec {text!r}", hint=f"write {example}")
    if text.startswith("hf-hub:"):
        return ModelSpec("hf-hub", text, None, text)
    if text.startswith("local-dir:"):  # open_clip reads the folder as given: expand "~" here, as a shell would
        folder = os.path.expanduser(text.removeprefix("local-dir:"))
        return ModelSpec("local-dir", f"local-dir:{folder}", None, text)
    arch, sep, weights = text.partition("@")
    if arch in BUILTIN_MODELS and not sep:
        return ModelSpec("builtin", arch, None, text)
    known = set(BUILTIN_MODELS) | set(_open_clip_archs())
    if arch not in known:
        off = _plugins_off_hint()
        if off and ":" in arch:  # `mylab:tiny`: a model loader's prefix, from a plugin that is off
            raise ModelError(f"no model loader for {text!r}", hint=off)
        hint = _suggest(arch, sorted(known))
        raise ModelError(f"unknown model architecture {arch!r}", hint=f"{hint}; {off}" if off else hint)
    if not sep:
        examples = ", ".join(f"{arch}@{t}" for t in _pretrained_tags(arch)[:4])
        raise ModelError(
            f"model {arch!r} needs weights",
            hint=(
                f"use {examples or arch + '@/path/weights.safetensors'}, "
                f"{arch}@/path/weights.safetensors or {arch}@random"
            ),
        )
    if not weights:
        raise ModelError(f"nothing after '@' in {text!r}", hint="give a pretrained tag, a weights file or 'random'")
    if weights == "random":
        return ModelSpec("random", arch, None, text)
    if "/" in weights or weights.endswith(WEIGHT_SUFFIXES):
        return ModelSpec("file", arch, weights, text)
    tags = _pretrained_tags(arch)
    if weights not in tags:
        hint = (
            _suggest(weights, tags) if tags else f"{arch} has no pretrained tags: use {arch}@/path/weights.safetensors"
        )
        raise ModelError(f"unknown pretrained tag {weights!r} for {arch}", hint=hint)
    return ModelSpec("pretrained", arch, weights, text)


def builtin_file(name: str, key: str):
    """A Traversable for one of a built-in model's packaged files (config, weights, sha256)."""
    return resources.files("probe.models").joinpath(BUILTIN_MODELS[name][key])


def list_models(include_pretrained: bool = True) -> list[str]:
    """Built-in names first, then every open_clip ARCH@TAG pair (those need cached weights)."""
    names = list(BUILTIN_MODELS)
    if include_pretrained:
        import open_clip

        names += [f"{a}@{t}" for a, t in open_clip.list_pretrained()]
    return names


def check_weights_file(path: Path, allow_pickle: bool) -> None:
    """Clear errors for a local checkpoint before anything reads it (missing, unknown format, pickle
    without consent, not a regular file): checked before any model code is imported."""
    from probe.files.checks import check_regular_file

    check_regular_file(path, "weights file", ModelError)
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}", hint="check the path after '@'")
    if path.suffix in PICKLE_SUFFIXES and not allow_pickle:
        raise ModelError(
            f"refusing to load pickle checkpoint {path}: pickle files can run code",
            hint="convert it once with `probe models convert`, or pass --allow-pickle if you trust it",
        )
    if path.suffix != ".safetensors" and path.suffix not in PICKLE_SUFFIXES:
        raise ModelError(f"unknown weights format {path.suffix!r} for {path}", hint="use a .safetensors file")
