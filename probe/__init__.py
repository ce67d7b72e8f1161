"""clip-probe: look inside CLIP models.

The Python API mirrors the CLI, on the same library functions the commands call:

    import probe
    session = probe.open("shapes-tiny")                       # or ViT-B-16@openai, hf-hub:..., ...
    images = probe.invert(session, ["a red star"], seeds=[0, 1])
    words = probe.neighbours(session, ["star"], k=5)
    report = probe.shuffle_test(session, ["a red star left of a blue circle"])
    scores = probe.score(session, images.images, ["a red star", "a blue star"])

Results are dataclasses that Jupyter shows as tables or image grids. The probe functions come from
plugins (`register_python_api`), so `probe.<name>` also reaches installed third-party plugins'
functions. Attributes load lazily: `import probe` stays fast and torch loads with the first model.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from probe.session import Session

__all__ = [
    "DEFAULT_MODEL",
    "ProbeError",
    "Session",
    "api",
    "invert",
    "list_models",
    "neighbours",
    "open",
    "parse_model_spec",
    "plugins",
    "score",
    "shuffle_test",
]

_LAZY = {
    "Session": ("probe.session", "Session"),
    "ProbeError": ("probe.errors", "ProbeError"),
    "list_models": ("probe.models.specs", "list_models"),
    "parse_model_spec": ("probe.models.specs", "parse_model_spec"),
    "DEFAULT_MODEL": ("probe.models.specs", "DEFAULT_MODEL"),
}


def open(
    model: str = "shapes-tiny", device: str = "auto", precision: str = "fp32", allow_pickle: bool = False
) -> Session:
    """Load a model once and return its Session; pass it to every probe function."""
    import contextlib
    import warnings

    # open_clip imports transformers, whose `tqdm.auto` warns in Jupyter when ipywidgets is missing (and
    # then uses text bars, which is all a download needs): imported first, with that warning silenced, so
    # a notebook's first cell stays free of it.
    with warnings.catch_warnings(), contextlib.suppress(ImportError):  # tqdm comes with huggingface_hub
        warnings.filterwarnings("ignore", message="IProgress not found")
        import tqdm.auto  # type: ignore[import-untyped]  # noqa: F401
    from probe.session import Session

    return Session.open(model, device, precision, allow_pickle)


def plugins() -> list[dict]:
    """The plugins this environment provides, as `probe plugins --json` lists them (before mounting)."""
    from probe.registry import discover

    found, _ = discover()
    return [p.info.as_dict() for p in found]


def api() -> dict[str, str]:
    """The probe functions plugins provide (`probe.<name>`), with what each does."""
    from probe.registry import python_api

    return {name: ext.about for name, ext in python_api().items()}


def _registered_function(name: str) -> Any:
    """The function registered as `probe.<name>` (a plugin may replace a built-in one with replace=True);
    a plugin that is off is named in the error."""
    from probe.registry import python_api

    return python_api().require(name, need=f"probe.{name}").function


def invert(session: Session, prompts: str | Sequence[str], **options: Any) -> Any:
    """Images the model matches to `prompts` (CLIP inversion); options: seeds, preset, settings.
    From the invert plugin: see its guide for every option."""
    return _registered_function("invert")(session, prompts, **options)


def neighbours(session: Session, texts: str | Sequence[str] = (), **options: Any) -> Any:
    """The nearest vocabulary words of texts (or images=...); options: vocabs, k, images."""
    return _registered_function("neighbours")(session, texts, **options)


def score(session: Session, images: Any, prompts: str | Sequence[str]) -> Any:
    """CLIP cosines and zero-shot labels of images (paths or tensors) against prompts."""
    return _registered_function("score")(session, images, prompts)


def shuffle_test(session: Session, prompts: str | Sequence[str], **options: Any) -> Any:
    """How much scores change when captions are perturbed; options: perturbations, seed, n_variants, images."""
    return _registered_function("shuffle_test")(session, prompts, **options)


def _is_submodule(name: str) -> bool:
    """`from probe import console` must import the module, never consult the plugin registry."""
    from importlib.util import find_spec

    return find_spec(f"probe.{name}") is not None


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    off = ""
    if not name.startswith("_") and not _is_submodule(name):
        from probe.registry import python_api

        found = python_api()
        if name in found:
            return found[name].function
        off = f"; {found.off}" if found.off else ""
    raise AttributeError(f"module 'probe' has no attribute {name!r} (probe functions: see probe.api(){off})")
