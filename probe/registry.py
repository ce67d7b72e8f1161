"""Plugin discovery through the `probe.plugins` entry-point group, built-ins and third parties alike.

A plugin is a module with `register_commands(app: typer.Typer) -> None`. Its top level must stay
light (typer and the standard library): heavy imports belong inside command bodies, which keeps
`probe --help` fast. `PROBE_LOAD_PLUGINS` (comma list; empty = none) selects plugins and
`PROBE_DISABLE_PLUGINS` removes some, by entry-point name.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from importlib import import_module
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Callable

GROUP = "probe.plugins"
LOAD_ENV = "PROBE_LOAD_PLUGINS"
DISABLE_ENV = "PROBE_DISABLE_PLUGINS"


@dataclass
class PluginInfo:
    """One row of `probe plugins`."""

    name: str
    module: str
    distribution: str
    version: str
    status: str  # loaded | failed | disabled
    reason: str = ""
    commands: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LoadedPlugin:
    info: PluginInfo
    module: ModuleType | None


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _dist_of(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "", ""
    return dist.metadata["Name"] or "", dist.version or ""


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def discover(extra: dict[str, Callable[[], ModuleType]] | None = None) -> list[LoadedPlugin]:
    """Import every selected plugin module; a broken one is reported, never fatal.

    `extra` maps names to module factories and exists for tests and embedding applications.
    """
    allow, deny = _env_names(LOAD_ENV), _env_names(DISABLE_ENV) or set()
    found: list[tuple[str, str, str, str, Callable[[], ModuleType]]] = []
    seen: set[str] = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        if ep.name in seen:  # the same distribution visible twice (e.g. editable + site) counts once
            continue
        seen.add(ep.name)
        dist, version = _dist_of(ep)
        found.append((ep.name, ep.value, dist, version, lambda ep=ep: import_module(ep.value.split(":")[0])))
    for name, factory in (extra or {}).items():
        found.append((name, name, "", "", factory))
    plugins = []
    for name, module_name, dist, version, factory in found:
        info = PluginInfo(name, module_name, dist, version, "loaded")
        if (allow is not None and name not in allow) or name in deny:
            info.status = "disabled"
            plugins.append(LoadedPlugin(info, None))
            continue
        try:
            module = factory()
            if not callable(getattr(module, "register_commands", None)):
                raise AttributeError("module has no register_commands(app) function")
        except Exception as exc:  # any import-time failure of a plugin must not break the CLI
            info.status, info.reason = "failed", _one_line(exc)
            plugins.append(LoadedPlugin(info, None))
            continue
        plugins.append(LoadedPlugin(info, module))
    return plugins
