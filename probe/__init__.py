"""clip-probe: look inside CLIP models.

The Python API mirrors the CLI. Attributes load lazily so `import probe` (and `probe --help`)
stay fast: torch and open_clip are imported only when a model is needed.

    import probe
    session = probe.Session.open("shapes-tiny")
    emb = session.encode_text(["a red star"])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Session", "ProbeError", "list_models", "parse_model_spec", "DEFAULT_MODEL", "plugins"]

_LAZY = {
    "Session": ("probe.session", "Session"),
    "ProbeError": ("probe.errors", "ProbeError"),
    "list_models": ("probe.models", "list_models"),
    "parse_model_spec": ("probe.models", "parse_model_spec"),
    "DEFAULT_MODEL": ("probe.models", "DEFAULT_MODEL"),
}


def plugins() -> list[dict]:
    """The plugins this environment provides, as `probe plugins --json` lists them (before mounting)."""
    from probe.registry import discover

    plugins, _ = discover()
    return [p.info.as_dict() for p in plugins]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(import_module(module), attr)
    raise AttributeError(f"module 'probe' has no attribute {name!r}")
