"""The extension registry: the pluggy manager, every thing plugins add through the `register_*`
hooks, and the clash policy (within a kind, the first registration of a name wins; built-ins first)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pluggy

from probe import hookspecs
from probe.errors import ProbeError
from probe.registry.discovery import LoadedPlugin, PluginInfo, _one_line

HOOKS = tuple(name for name in dir(hookspecs) if name.startswith("register_"))

#: The extension kinds collected from the `register_*` hooks (other than commands): hook -> kind label.
KINDS = {
    "register_model_loaders": "model loader",
    "register_vocabularies": "vocabulary",
    "register_perturbations": "perturbation",
    "register_experiment_steps": "experiment step kind",
    "register_invert_transforms": "invert transform",
    "register_invert_params": "invert parameterisation",
    "register_invert_priors": "invert prior",
    "register_label_sets": "label set",
    "register_python_api": "Python API function",
}


@dataclass
class Extension:
    """One thing a plugin registered: a vocabulary, a perturbation, a step kind..."""

    kind: str
    name: str
    value: Any
    plugin: str
    about: str = ""
    options: dict = field(default_factory=dict)


def _shape_problem(hook: str, name: str, value: Any) -> str:
    """Why a registered value cannot work (checked at registration, not at first use), or ""."""
    if hook == "register_experiment_steps":
        if not all(callable(getattr(value, a, None)) for a in ("normalise", "run")) or not hasattr(value, "options"):
            return "register a StepKind(name, options, normalise, run, ...)"
        if getattr(value, "name", name) != name:
            return f"its StepKind is named {value.name!r}"
        return ""
    if hook == "register_label_sets":
        return (
            "" if isinstance(value, (dict, str, os.PathLike)) else "give a mapping attribute -> prompts or a YAML path"
        )
    return "" if callable(value) else f"expected a function, got {type(value).__name__}"


class _Manager(pluggy.PluginManager):
    """Also accepts unmarked module functions named after a hook, so `def register_commands(app)` works."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name in HOOKS and inspect.isfunction(getattr(plugin, name, None)):
            return {}
        return opts


class Registry:
    """The loaded plugins, their pluggy manager and everything they registered.

    Extensions are collected on first use, one hook at a time; within a kind the first registration
    of a name wins (built-ins come first), and a later one is recorded as a clash unless it passed
    `replace=True`.
    """

    def __init__(self, plugins: list[LoadedPlugin], warnings: list[str] | None = None) -> None:
        self.plugins = plugins
        self.warnings: list[str] = list(warnings or [])
        self.clashes: list[str] = []
        self.manager = _Manager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self._extensions: dict[str, dict[str, Extension]] = {}
        self._shown: set[str] = set()
        for plugin in sorted(plugins, key=lambda p: not p.info.builtin):  # built-ins register first
            if plugin.module is None:
                continue
            try:
                self.manager.register(plugin.module, name=plugin.info.name)
                self.manager.check_pending()
            except Exception as exc:  # a plugin whose hooks do not match the specs is reported, not fatal
                if self.manager.is_registered(plugin.module):
                    self.manager.unregister(plugin.module)
                plugin.info.status, plugin.info.reason = "failed", _one_line(exc)
                plugin.module = None
                continue
            plugin.info.hooks = sorted({c.name for c in self.manager.get_hookcallers(plugin.module) or []})
            wrappers = [
                i.function.__name__
                for c in self.manager.get_hookcallers(plugin.module) or []
                for i in c.get_hookimpls()
                if i.plugin is plugin.module and (i.hookwrapper or i.wrapper)
            ]
            if wrappers:
                self.manager.unregister(plugin.module)
                plugin.info.status, plugin.info.reason = (
                    "failed",
                    f"hook wrappers are not supported ({', '.join(wrappers)})",
                )
                plugin.module = None
                continue
            if not plugin.info.hooks:
                self.manager.unregister(plugin.module)
                plugin.info.status, plugin.info.reason = (
                    "failed",
                    "the module implements no probe hook (e.g. register_commands)",
                )
                plugin.module = None

    # ------------------------------------------------------------------ plugins

    def unavailable(self) -> list[PluginInfo]:
        """Plugins that are installed but not running: disabled or failed."""
        return [p.info for p in self.plugins if p.info.status != "loaded"]

    def why_missing(self) -> str:
        """A hint naming the plugins that are disabled or failed, for 'not found' messages."""
        parts = []
        for info in self.unavailable():
            why = "disabled" if info.status == "disabled" else f"failed: {info.reason}"
            parts.append(f"{info.name} ({why})")
        return "plugins not running: " + "; ".join(parts) + " — see `probe plugins`" if parts else "see `probe plugins`"

    # ------------------------------------------------------------------ extensions

    def _collect(self, hook: str) -> dict[str, Extension]:
        """Call each plugin's implementation in registration order (built-ins first). A plugin's
        registrations count only if its hook finishes; a bad one is a warning, never fatal."""
        kind = KINDS[hook]
        found: dict[str, Extension] = {}
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            staged: list[tuple[Extension, bool]] = []

            def register(
                name: Any,
                value: Any = None,
                about: str = "",
                *,
                replace: bool = False,
                _plugin: str = impl.plugin_name,
                _staged: list[tuple[Extension, bool]] = staged,
                **options: Any,
            ) -> None:
                if hook == "register_experiment_steps" and value is None:  # register(StepKind(...))
                    name, value = getattr(name, "name", name), name
                if not isinstance(name, str) or not name.strip():
                    raise ValueError(f"a {kind} registered without a name")
                problem = _shape_problem(hook, name, value)
                if problem:
                    raise ValueError(f"{kind} {name!r}: {problem}")
                _staged.append((Extension(kind, name, value, _plugin, about, options), replace))

            try:
                impl.function(register=register)
            except Exception as exc:  # a broken hook drops that plugin's contributions to this hook only
                self.warnings.append(
                    f"plugin {impl.plugin_name!r} failed in {hook}, nothing it registered there is used: "
                    f"{_one_line(exc)}"
                )
                continue
            for ext, replace in staged:
                if ext.name in found and not replace:
                    self.clashes.append(
                        f"{kind} {ext.name!r}: plugin {found[ext.name].plugin!r} wins, "
                        f"plugin {ext.plugin!r} loses (rename it, or register with replace=True)"
                    )
                    continue
                found[ext.name] = ext
        return found

    def messages(self) -> list[str]:
        """Warnings and clashes not yet shown (each is returned once), for the CLI to print."""
        out = [m for m in self.warnings + [f"clash: {c}" for c in self.clashes] if m not in self._shown]
        self._shown.update(out)
        return out

    def extensions(self, hook: str) -> dict[str, Extension]:
        """Name -> Extension for one `register_*` hook, collected once."""
        if hook not in self._extensions:
            self._extensions[hook] = self._collect(hook)
        return self._extensions[hook]

    def get(self, hook: str, name: str, need: str = "") -> Extension:
        """The extension registered under `name`, or a one-line error saying what exists and what is off."""
        found = self.extensions(hook)
        if name in found:
            return found[name]
        kind = KINDS[hook]
        known = ", ".join(found) or "none"
        for_what = f" (needed by {need})" if need else ""
        raise ProbeError(f"unknown {kind} {name!r}{for_what}; known: {known}", hint=self.why_missing())

    def all_extensions(self) -> Iterator[Extension]:
        for hook in KINDS:
            yield from self.extensions(hook).values()
