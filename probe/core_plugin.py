"""What the core itself registers, through the same hooks as any plugin: the Hugging Face
transformers model loader (`hf-transformers:REPO_OR_FOLDER`). Always loaded; not listed by
`probe plugins` (its registrations show under the name `core`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from probe.hookspecs import hookimpl

NAME = "core"


def _load_hf_transformers(target: str, allow_pickle: bool = False) -> Any:
    from probe import hf_transformers

    return hf_transformers.load(target, allow_pickle=allow_pickle)


@hookimpl
def register_model_loaders(register: Callable[..., None]) -> None:
    register(
        "hf-transformers:",
        _load_hf_transformers,
        "a Hugging Face transformers CLIPModel: a save_pretrained folder or a cached repo (needs clip-probe[hf])",
    )
