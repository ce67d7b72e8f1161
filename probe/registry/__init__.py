"""The process's plugin registry: discovery (`discovery`), the extensions plugins register
(`extensions`), and the lookups library code uses. Commands are mounted by the CLI (`probe.cli.mount`)."""

from __future__ import annotations

from typing import Any

from probe.registry.discovery import API_VERSION, discover
from probe.registry.extensions import HOOKS, KINDS, Extension, Registry

__all__ = [
    "API_VERSION",
    "HOOKS",
    "KINDS",
    "Extension",
    "Registry",
    "activate",
    "current",
    "deactivate",
    "discover",
    "lookup",
    "registered",
]

_active: list[Registry] = []  # the process's registry: set by the CLI (or a test), else made on first use


def activate(registry: Registry) -> Registry:
    """Make `registry` the one library lookups use (the CLI does this once per process)."""
    _active[:] = [registry]
    return registry


def deactivate() -> None:
    """Forget the process's registry; the next lookup discovers the installed plugins again."""
    _active.clear()


def current() -> Registry:
    """The process's registry, discovering installed plugins on first use (scripts and notebooks)."""
    if not _active:
        plugins, warnings = discover()
        activate(Registry(plugins, warnings))
    return _active[0]


def lookup(hook: str, name: str, need: str = "") -> Any:
    """The value registered under `name` for `hook`, from the process's registry."""
    return current().get(hook, name, need).value


def registered(hook: str) -> dict[str, Extension]:
    """Every extension registered for `hook`, by name."""
    return current().extensions(hook)
