"""The `hf-transformers:` model loader, registered through the same hook as any third-party loader.
transformers is imported only when such a model loads (it needs the [hf] extra)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from probe.plugin import hookimpl

PROBE_API = 1


def _load(target: str, allow_pickle: bool = False) -> Any:
    from probe_hf import loader

    return loader.load(target, allow_pickle=allow_pickle)


@hookimpl
def register_model_loaders(register: Callable[..., None]) -> None:
    register(
        "hf-transformers:",
        _load,
        "a Hugging Face transformers CLIPModel: a save_pretrained folder or a cached repo (needs the hf extra)",
    )
