"""The process's plugin registry: discovery (`discovery`), the extensions plugins register
(`extensions`, typed as `records`), output checks (`checks`), and one typed accessor per kind.
Commands are mounted by the CLI (`probe.cli.mount`).

    from probe.registry import vocabularies
    vocab = vocabularies().require("world").load()
"""

from __future__ import annotations

from typing import Any

from probe.registry.discovery import API_VERSION, discover
from probe.registry.extensions import HOOKS, Registry
from probe.registry.records import (
    KINDS,
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

__all__ = [
    "API_VERSION",
    "HOOKS",
    "KINDS",
    "Extension",
    "Found",
    "Registry",
    "activate",
    "current",
    "deactivate",
    "discover",
    "invert_params",
    "invert_priors",
    "invert_transforms",
    "label_sets",
    "model_loaders",
    "perturbations",
    "python_api",
    "replacements",
    "step_kinds",
    "vocabularies",
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


# ---------------------------------------------------------------- one typed accessor per kind


def model_loaders() -> Found[ModelLoader]:
    """Spec prefix -> model loader (`-m PREFIX...`)."""
    return current().found(ModelLoader)


def vocabularies() -> Found[VocabularySource]:
    """Name -> vocabulary source (`probe neighbours -v NAME`)."""
    return current().found(VocabularySource)


def perturbations() -> Found[Perturbation]:
    """Name -> caption perturbation (`probe shuffle-test`)."""
    return current().found(Perturbation)


def step_kinds() -> Found[StepKindPart]:
    """Name -> experiment step kind (`probe run`); `.step` is the checked StepKind."""
    return current().found(StepKindPart)


def invert_transforms() -> Found[InvertTransform]:
    """Name -> invert transform factory."""
    return current().found(InvertTransform)


def invert_params() -> Found[InvertParam]:
    """Name -> invert image parameterisation factory."""
    return current().found(InvertParam)


def invert_priors() -> Found[InvertPrior]:
    """Name -> invert prior factory."""
    return current().found(InvertPrior)


def label_sets() -> Found[LabelSet]:
    """Name -> attribute label set for the audits."""
    return current().found(LabelSet)


def python_api() -> Found[ApiFunction]:
    """Name -> function reachable as `probe.<name>`."""
    return current().found(ApiFunction)


def replacements() -> list[dict[str, str]]:
    """Every registration a plugin replaced with `replace=True` in this process (kind, name, plugin,
    replaced): recorded in `--json` output and run manifests."""
    return list(current().replacements)


# ---------------------------------------------------------------- by hook name (the invert plugin's)


def lookup(hook: str, name: str, need: str = "") -> Any:
    """The value registered under `name` for `hook` (prefer the typed accessors)."""
    return current().get(hook, name, need).value


def registered(hook: str) -> dict[str, Extension]:
    """Every record registered for `hook`, by name (prefer the typed accessors)."""
    return dict(current().extensions(hook))
