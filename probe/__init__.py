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

from importlib import import_module
from typing import Any

__all__ = ["DEFAULT_MODEL", "ProbeError", "Session", "api", "list_models", "parse_model_spec", "plugins"]

_LAZY = {
    "Session": ("probe.session", "Session"),
    "ProbeError": ("probe.errors", "ProbeError"),
    "list_models": ("probe.models.specs", "list_models"),
    "parse_model_spec": ("probe.models.specs", "parse_model_spec"),
    "DEFAULT_MODEL": ("probe.models.specs", "DEFAULT_MODEL"),
}


def open(model: str = "shapes-tiny", device: str = "auto", precision: str = "fp32", allow_pickle: bool = False) -> Any:
    """Load a model once and return its Session; pass it to every probe function."""
    from probe.session import Session

    return Session.open(model, device, precision, allow_pickle)


def plugins() -> list[dict]:
    """The plugins this environment provides, as `probe plugins --json` lists them (before mounting)."""
    from probe.registry import discover

    found, _ = discover()
    return [p.info.as_dict() for p in found]


def api() -> dict[str, str]:
    """The probe functions plugins provide (`probe.<name>`), with what each does."""
    from probe.registry import registered

    return {name: ext.about for name, ext in registered("register_python_api").items()}


def _is_submodule(name: str) -> bool:
    """`from probe import console` must import the module, never consult the plugin registry."""
    from importlib.util import find_spec

    return find_spec(f"probe.{name}") is not None


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    if not name.startswith("_") and not _is_submodule(name):
        from probe.registry import registered

        found = registered("register_python_api")
        if name in found:
            return found[name].value
    raise AttributeError(f"module 'probe' has no attribute {name!r} (probe functions: see probe.api())")
