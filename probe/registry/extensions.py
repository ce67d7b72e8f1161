"""The extension registry: the pluggy manager, every thing plugins add through the `register_*`
hooks, and the clash policy.

Clash policy, for every kind: built-in plugins register first, whatever third-party entry points are
called; a later registration of a taken name loses (a clash, printed by every command) unless it
passes `replace=True`, which replaces the earlier one and is printed and recorded as a replacement.
Model-loader prefixes may not overlap each other, the built-in model names or the core's `hf-hub:`
and `local-dir:`; Python API names may not shadow the `probe` module's own attributes.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
from collections.abc import Callable, Iterator
from typing import Any

import pluggy

from probe import hookspecs
from probe.registry.checks import guarded, one_line, outcomes_problem, perturbation_problem
from probe.registry.discovery import UNMARKED_HOOKS_UNTIL, LoadedPlugin, PluginInfo
from probe.registry.records import (
    KINDS,
    RECORDS,
    ApiFunction,
    Extension,
    Found,
    InvertParam,
    InvertPrior,
    InvertTransform,
    LabelSet,
    ModelLoader,
    Perturbation,
    StepKindPart,
    VocabularySource,
)

HOOKS = tuple(name for name in dir(hookspecs) if name.startswith("register_"))

#: Spec prefixes the core resolves itself; no plugin loader may claim an overlapping prefix.
CORE_SPEC_PREFIXES = ("hf-hub:", "local-dir:")
#: Attributes of the `probe` module a Python API function may not shadow.
CORE_API_NAMES = frozenset(
    {"open", "plugins", "api", "Session", "ProbeError", "DEFAULT_MODEL", "list_models", "parse_model_spec"}
)

Staged = list[tuple[Extension, bool]]
Add = Callable[..., None]


# ---------------------------------------------------------------- one register callback per hook


def _model_loaders(add: Add) -> Callable[..., None]:
    def register(prefix: str, load: Callable[..., Any], about: str = "", *, replace: bool = False) -> None:
        """Model specs starting with `prefix` are loaded by `load(target, allow_pickle=...)`."""
        add(ModelLoader, prefix, replace, about=about, load=load)

    return register


def _vocabularies(add: Add) -> Callable[..., None]:
    def register(name: str, load: Callable[[], Any], about: str = "", *, replace: bool = False) -> None:
        """`load()` returns a Vocabulary or a list of words."""
        add(VocabularySource, name, replace, about=about, load=load)

    return register


def _perturbations(add: Add) -> Callable[..., None]:
    def register(
        name: str,
        apply: Callable[..., Any],
        about: str = "",
        *,
        needs_tagger: bool = False,
        needs: str = "",
        replace: bool = False,
    ) -> None:
        """`apply(tokens, rng[, tags])` returns the perturbed words, or None."""
        add(Perturbation, name, replace, about=about, apply=apply, needs_tagger=bool(needs_tagger), needs=str(needs))

    return register


def _experiment_steps(add: Add) -> Callable[..., None]:
    def register(step: Any, *, replace: bool = False) -> None:
        """`step` is a StepKind(name, options, normalise, run, ...)."""
        if not all(callable(getattr(step, a, None)) for a in ("normalise", "run")) or not hasattr(step, "options"):
            raise TypeError(f"register a StepKind(name, options, normalise, run, ...), got {type(step).__name__}")
        add(StepKindPart, getattr(step, "name", None), replace, about=getattr(step, "about", "") or "", step=step)

    return register


def _invert_parts(cls: type[Extension]) -> Callable[[Add], Callable[..., None]]:
    def registrar(add: Add) -> Callable[..., None]:
        def register(
            name: str, make: Callable[..., Any], about: str = "", *, options: Any = None, replace: bool = False
        ) -> None:
            """`make(options, model_size)` builds the part; `options` is the pydantic model of its knobs."""
            add(cls, name, replace, about=about, make=make, options_model=options)

        return register

    return registrar


def _label_sets(add: Add) -> Callable[..., None]:
    def register(name: str, labels: Any, about: str = "", *, replace: bool = False) -> None:
        """`labels`: a mapping attribute -> prompts, or the path of a label-set YAML file."""
        add(LabelSet, name, replace, about=about, labels=labels)

    return register


def _python_api(add: Add) -> Callable[..., None]:
    def register(name: str, function: Callable[..., Any], about: str = "", *, replace: bool = False) -> None:
        """`function` becomes `probe.<name>`."""
        add(ApiFunction, name, replace, about=about, function=function)

    return register


REGISTRARS: dict[str, Callable[[Add], Callable[..., None]]] = {
    "register_model_loaders": _model_loaders,
    "register_vocabularies": _vocabularies,
    "register_perturbations": _perturbations,
    "register_experiment_steps": _experiment_steps,
    "register_invert_transforms": _invert_parts(InvertTransform),
    "register_invert_params": _invert_parts(InvertParam),
    "register_invert_priors": _invert_parts(InvertPrior),
    "register_label_sets": _label_sets,
    "register_python_api": _python_api,
}


def _guard(cls: type[Extension], fields: dict[str, Any], plugin: str, name: str, builtin: bool) -> dict[str, Any]:
    """The registered callables wrapped so that their exceptions and wrong outputs name the plugin."""
    hook = cls.hook
    if cls is StepKindPart:
        step = fields["step"]
        changes: dict[str, Any] = {
            "run": guarded(step.run, plugin, hook, name, builtin, check=outcomes_problem),
            "normalise": guarded(step.normalise, plugin, hook, name, builtin),
        }
        if step.plan is not None:
            changes["plan"] = guarded(step.plan, plugin, hook, name, builtin)
        if getattr(step, "texts", None) is not None:
            changes["texts"] = guarded(step.texts, plugin, hook, name, builtin)
        checked = copy.copy(step)  # the plugin's own object stays as it registered it
        for attr, value in changes.items():
            object.__setattr__(checked, attr, value)
        return {"step": checked}
    if cls is LabelSet:
        return fields
    key = next(k for k in ("load", "apply", "make", "function") if k in fields)
    check = perturbation_problem if cls is Perturbation else None
    return {**fields, key: guarded(fields[key], plugin, hook, name, builtin, check=check)}


def _shape_problem(cls: type[Extension], fields: dict[str, Any]) -> str:
    """Why a registered value cannot work (checked at registration, not at first use), or ""."""
    if cls is LabelSet:
        import os

        labels = fields["labels"]
        return (
            "" if isinstance(labels, (dict, str, os.PathLike)) else "give a mapping attribute -> prompts or a YAML path"
        )
    if cls is StepKindPart:
        return ""
    value = next(fields[k] for k in ("load", "apply", "make", "function") if k in fields)
    return "" if callable(value) else f"expected a function, got {type(value).__name__}"


def prefix_overlap(prefix: str, taken: list[str]) -> str:
    """The first of `taken` (spec prefixes or model names) that `prefix` overlaps, or ""."""
    return next((t for t in taken if t.startswith(prefix) or prefix.startswith(t)), "")


# ---------------------------------------------------------------- hook implementations that do not count


class _Manager(pluggy.PluginManager):
    """Accepts unmarked module functions named after a hook from the modules in `unmarked_ok`
    (plugins written for plugin API 1, when that was allowed)."""

    def __init__(self, project: str) -> None:
        super().__init__(project)
        self.unmarked_ok: set[int] = set()

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and id(plugin) in self.unmarked_ok and name in HOOKS and callable(getattr(plugin, name, None)):
            return {}
        return opts


def hook_name_problems(module: Any, unmarked_ok: bool = False) -> list[str]:
    """Functions in a plugin module that look like hooks but are not: unmarked (no @hookimpl, unless
    `unmarked_ok`: plugin API 1) or misspelt."""
    marker = f"{hookspecs.PROJECT}_impl"
    problems = []
    for attr, value in sorted(vars(module).items()):
        if not attr.startswith("register_") or not callable(value):
            continue
        if attr in HOOKS and not hasattr(value, marker) and not unmarked_ok:
            problems.append(f"{attr} is not marked @hookimpl (it would never be called)")
        elif attr not in HOOKS:
            close = difflib.get_close_matches(attr, HOOKS, n=1, cutoff=0.85)
            if close or hasattr(value, marker):
                hint = f" (did you mean {close[0]}?)" if close else ""
                problems.append(f"{attr} is not a probe hook{hint}")
    return problems


class Registry:
    """The loaded plugins, their pluggy manager and everything they registered.

    Every plugin's `register_*` hooks are called when the registry is made, built-ins first: an error
    in any of them (an unknown keyword, a bad value) marks that plugin failed and none of its
    registrations are used. Clashes and replacements follow the module's clash policy.
    """

    def __init__(self, plugins: list[LoadedPlugin], warnings: list[str] | None = None) -> None:
        self.plugins = sorted(plugins, key=lambda p: not p.info.builtin)  # built-ins first, then by name
        self.warnings: list[str] = list(warnings or [])
        self.clashes: list[str] = []
        self.replacements: list[dict[str, str]] = []
        self.manager = _Manager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self._extensions: dict[str, dict[str, Extension]] = {hook: {} for hook in RECORDS}
        self._shown: set[str] = set()
        for plugin in self.plugins:
            if plugin.module is not None:
                self._register(plugin)
        # Third-party plugins' hooks are called now, so that every command sees their clashes; the
        # built-ins' hooks of a kind no third-party plugin adds to run on first use (`probe --help`
        # stays fast).
        self._placed: set[str] = set()
        self._third_party: dict[str, Staged] = {hook: [] for hook in RECORDS}
        for plugin in self.plugins:
            if plugin.module is not None and not plugin.info.builtin:
                for ext, replace in self._collect(plugin, tuple(RECORDS)) or []:
                    self._third_party[ext.hook].append((ext, replace))
        for hook, staged in self._third_party.items():
            if staged:
                self._ensure(hook)

    def _ensure(self, hook: str) -> None:
        """Place one kind's registrations once: the built-ins', then the third-party plugins'."""
        if hook in self._placed:
            return
        self._placed.add(hook)
        for plugin in self.plugins:
            if plugin.module is not None and plugin.info.builtin:
                for ext, replace in self._collect(plugin, (hook,)) or []:
                    self._place(ext, replace)
        for ext, replace in self._third_party[hook]:
            if any(p.info.name == ext.plugin and p.module is not None for p in self.plugins):
                self._place(ext, replace)

    def fail(self, plugin: LoadedPlugin, reason: str) -> None:
        """Mark a plugin failed: unregistered, and nothing it registered stays in use."""
        for found in self._extensions.values():
            for name in [n for n, ext in found.items() if ext.plugin == plugin.info.name]:
                del found[name]
        if plugin.module is not None and self.manager.is_registered(plugin.module):
            self.manager.unregister(plugin.module)
        plugin.info.status, plugin.info.reason = "failed", reason
        plugin.module = None

    def _register(self, plugin: LoadedPlugin) -> None:
        """Hand the plugin to pluggy; only @hookimpl-marked functions count, misspelt hooks are errors."""
        assert plugin.module is not None
        unmarked_ok = plugin.info.api.isdigit() and int(plugin.info.api) <= UNMARKED_HOOKS_UNTIL
        if unmarked_ok:
            self.manager.unmarked_ok.add(id(plugin.module))
        problems = hook_name_problems(plugin.module, unmarked_ok)
        if problems:
            self.fail(plugin, "; ".join(problems))
            return
        try:
            self.manager.register(plugin.module, name=plugin.info.name)
            self.manager.check_pending()
        except Exception as exc:  # hooks that do not match the specs: reported, not fatal
            self.fail(plugin, one_line(exc))
            return
        callers = self.manager.get_hookcallers(plugin.module) or []
        plugin.info.hooks = sorted({c.name for c in callers})
        wrappers = [
            i.function.__name__
            for c in callers
            for i in c.get_hookimpls()
            if i.plugin is plugin.module and (i.hookwrapper or i.wrapper)
        ]
        if wrappers:
            self.fail(plugin, f"hook wrappers are not supported ({', '.join(wrappers)})")
        elif not plugin.info.hooks:
            self.fail(plugin, "the module implements no probe hook (e.g. register_commands)")

    # ------------------------------------------------------------------ collecting

    def _collect(self, plugin: LoadedPlugin, hooks: tuple[str, ...]) -> Staged | None:
        """Call the plugin's `register_*` hooks among `hooks`; if one fails, the plugin fails and none
        of its registrations count (None)."""
        info = plugin.info
        staged: Staged = []

        def add(cls: type[Extension], name: Any, replace: bool, **fields: Any) -> None:
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"a {cls.kind} registered without a name")
            problem = _shape_problem(cls, fields)
            if problem:
                raise ValueError(f"{cls.kind} {name!r}: {problem}")
            fields = _guard(cls, fields, info.name, name, info.builtin)
            staged.append((cls(name=name, plugin=info.name, builtin=info.builtin, **fields), bool(replace)))

        for hook in hooks:
            registrar = REGISTRARS[hook]
            for impl in getattr(self.manager.hook, hook).get_hookimpls():
                if impl.plugin_name != info.name:
                    continue
                try:
                    impl.function(register=registrar(add))
                except Exception as exc:  # the plugin is failed as a whole: nothing half-registered stays in use
                    self.warnings.append(
                        f"plugin {info.name!r} failed in {hook}, nothing it registered is used: {one_line(exc)}"
                    )
                    self.fail(plugin, f"{hook}: {one_line(exc)}")
                    return None
        return staged

    def _place(self, ext: Extension, replace: bool) -> None:
        """Apply the clash policy to one registration."""
        found = self._extensions[ext.hook]
        refused = self._refusal(ext, found, replace)
        if refused:
            self.clashes.append(f"{ext.kind} {ext.name!r} of plugin {ext.plugin!r} refused: {refused}")
            return
        old = found.get(ext.name)
        if old is not None and not replace:
            self.clashes.append(
                f"{ext.kind} {ext.name!r}: plugin {old.plugin!r} wins, plugin {ext.plugin!r} loses "
                "(rename it, or register with replace=True)"
            )
            return
        if old is not None:
            ext = dataclasses.replace(ext, replaced=old.plugin)
            self.replacements.append({"kind": ext.kind, "name": ext.name, "plugin": ext.plugin, "replaced": old.plugin})
        found[ext.name] = ext

    def _refusal(self, ext: Extension, found: dict[str, Extension], replace: bool) -> str:
        """Why a registration is refused whatever `replace` says, or ""."""
        if isinstance(ext, ModelLoader):
            from probe.models.builtin import BUILTIN_MODELS

            core = prefix_overlap(ext.name, [*CORE_SPEC_PREFIXES, *BUILTIN_MODELS])
            if core:
                return f"it overlaps the core's model spec {core!r}"
            other = prefix_overlap(ext.name, [p for p in found if p != ext.name])
            if other:
                return f"it overlaps the prefix {other!r} of plugin {found[other].plugin!r}"
        if isinstance(ext, ApiFunction) and ext.name in CORE_API_NAMES:
            return f"it would shadow probe.{ext.name}, which the core provides"
        return ""

    # ------------------------------------------------------------------ plugins

    def unavailable(self) -> list[PluginInfo]:
        """Plugins that are installed but not running: disabled or failed."""
        return [p.info for p in self.plugins if p.info.status != "loaded"]

    def why_missing(self) -> str:
        """A hint naming the plugins that are disabled or failed and how to turn each on, for 'unknown'
        messages. Disabled plugins are never imported, so what they provide is not known: each one that
        is not running is named as a possible provider."""
        parts = [f"{info.name} ({enable_hint(info)})" for info in self.unavailable()]
        if not parts:
            return "see `probe plugins`"
        return "it may come from a plugin that is not running: " + "; ".join(parts) + " — see `probe plugins`"

    # ------------------------------------------------------------------ extensions

    def messages(self) -> list[str]:
        """Warnings, clashes and replacements not yet shown (each is returned once), for the CLI to print."""
        lines = (
            self.warnings
            + [f"clash: {c}" for c in self.clashes]
            + [
                f"plugin {r['plugin']!r} replaces the {r['kind']} {r['name']!r} of plugin {r['replaced']!r}"
                for r in self.replacements
            ]
        )
        out = [m for m in lines if m not in self._shown]
        self._shown.update(out)
        return out

    def extensions(self, hook: str) -> dict[str, Extension]:
        """Name -> record for one `register_*` hook."""
        self._ensure(hook)
        return self._extensions[hook]

    def found(self, cls: type[Any]) -> Found[Any]:
        """The records of one kind, with `require(name)` for a lookup that explains a miss."""
        return Found(dict(self.extensions(cls.hook)), cls.kind, self.why_missing() if self.unavailable() else "")

    def get(self, hook: str, name: str, need: str = "") -> Extension:
        """The record registered under `name`, or a one-line error saying what exists and what is off."""
        return self.found(RECORDS[hook]).require(name, need)

    def all_extensions(self) -> Iterator[Extension]:
        for hook in RECORDS:
            yield from self.extensions(hook).values()


def enable_hint(info: PluginInfo) -> str:
    """How to turn a plugin that is not running on: which variable to change, or what to fix."""
    if info.status == "failed":
        return f"failed: {info.reason}"
    if "PROBE_DISABLE_PLUGINS" in info.reason:
        return "disabled: remove it from PROBE_DISABLE_PLUGINS"
    return f"disabled: add {info.name} to PROBE_LOAD_PLUGINS"


__all__ = ["HOOKS", "KINDS", "REGISTRARS", "Extension", "Registry", "enable_hint", "hook_name_problems"]
