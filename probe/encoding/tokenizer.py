"""open_clip's BPE tokenizer without importing open_clip.

The tokenizer module imports only ftfy, regex, numpy and torch; the open_clip package imports
torchvision and, through it, torch._dynamo. Text snapshots (`probe.encoding.snapshot`) run the module
from its installed file so a text-only command never pays for the package.
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

MODULE_NAME = "probe._open_clip_tokenizer"
CLEAN_NAMES = {"_clean_lower": "lower", "_clean_whitespace": "whitespace", "_clean_canonicalize": "canonicalize"}


def tokenizer_module() -> Any:
    """open_clip/tokenizer.py, executed once per process from its file (not through the package)."""
    if MODULE_NAME in sys.modules:
        return sys.modules[MODULE_NAME]
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("open_clip is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "tokenizer.py"
    module_spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    sys.modules[MODULE_NAME] = module
    return module


def plain_bpe(tokenizer: Any) -> bool:
    """Whether `tokenizer` is open_clip's SimpleTokenizer tokenizing as it does by default (no
    reduction strategy for over-long texts), whose token layout probe can rebuild."""
    return type(tokenizer).__name__ == "SimpleTokenizer" and getattr(tokenizer, "reduction_fn", None) is None


def tokenizer_settings(tokenizer: Any) -> dict | None:
    """The SimpleTokenizer arguments that rebuild `tokenizer`, or None for any other tokenizer."""
    if not plain_bpe(tokenizer):
        return None
    clean = CLEAN_NAMES.get(getattr(getattr(tokenizer, "clean_fn", None), "__name__", ""))
    if clean is None:
        return None
    extra = [tokenizer.decoder[i] for i in tokenizer.all_special_ids[2:]]
    return {"context_length": tokenizer.context_length, "clean": clean, "additional_special_tokens": extra or None}


def build_tokenizer(settings: dict) -> Any:
    """A SimpleTokenizer with `settings`. Importing the module already builds a default one (about
    0.15 s of BPE tables); without extra special tokens the tables are the same, so that instance is
    copied and given its context length and cleaner. Text snapshots check the result token for
    token against the session's own tokenizer before one is written."""
    module = tokenizer_module()
    default = getattr(module, "_tokenizer", None)
    if default is None or settings.get("additional_special_tokens") or type(default) is not module.SimpleTokenizer:
        return module.SimpleTokenizer(**settings)
    tokenizer = copy.copy(default)
    tokenizer.cache = dict(default.cache)
    tokenizer.context_length = settings["context_length"]
    tokenizer.clean_fn = module.get_clean_fn(settings["clean"])
    return tokenizer


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A hash of what decides a tokenizer's ids: its vocabulary and merges, special tokens, context
    length and text cleaning. Caches of text embeddings put it in their keys, so a changed tokenizer
    (a new vocabulary file, other special tokens) is never answered from embeddings of the old one."""
    import hashlib

    digest = hashlib.sha256()
    for part in _tokenizer_parts(tokenizer):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def _tokenizer_parts(tokenizer: Any) -> list[str]:
    import json

    clean = getattr(getattr(tokenizer, "clean_fn", None), "__name__", "")
    reduction = getattr(getattr(tokenizer, "reduction_fn", None), "__name__", "")
    parts = [type(tokenizer).__qualname__, str(getattr(tokenizer, "context_length", "")), clean, reduction]
    parts += [
        f"{n}={getattr(tokenizer, n, '')}" for n in ("strip_sep_token", "tokenizer_mode")
    ]  # open_clip's HF wrapper
    bpe_ranks = getattr(tokenizer, "bpe_ranks", None)
    encoder = getattr(tokenizer, "encoder", None)
    if isinstance(bpe_ranks, dict) and isinstance(encoder, dict):  # open_clip's BPE: the tables themselves
        parts.append("\n".join(map(" ".join, bpe_ranks)))  # merges in rank order (about 20 ms)
        parts.append("\n".join(list(encoder)[len(bpe_ranks) + 512 :]))  # the special tokens after bytes and merges
        return parts
    hf = getattr(tokenizer, "tokenizer", None)
    hf = hf if hf is not None and callable(getattr(hf, "get_vocab", None)) else tokenizer
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is not None:  # a fast Hugging Face tokenizer: its whole definition, normaliser and template included
        parts.append(backend.to_str())
    elif callable(getattr(hf, "get_vocab", None)):
        parts.append(json.dumps(hf.get_vocab(), sort_keys=True))
    special = getattr(hf, "special_tokens_map", None)
    if isinstance(special, dict):
        parts.append(json.dumps(special, sort_keys=True, default=str))
    return parts
