"""Typed records of what plugins register, one class per kind, and the accessor's result type.

Each record names the plugin that registered it, so every message about it (a clash, a wrong
output, an exception at run time) can say which plugin to blame.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from probe.errors import ProbeError


@dataclass(frozen=True, kw_only=True)
class Extension:
    """One thing a plugin registered. `replaced` names the plugin whose registration of the same
    name this one replaced (it passed `replace=True`), else ""."""

    name: str
    plugin: str
    about: str = ""
    builtin: bool = False
    replaced: str = ""

    hook = ""  # the hook it came through, e.g. "register_vocabularies"
    kind = ""  # the kind in messages, e.g. "vocabulary"

    @property
    def value(self) -> Any:
        """The registered object (the loader, the StepKind, ...): kept for `lookup()` callers."""
        raise NotImplementedError

    @property
    def options(self) -> dict[str, Any]:
        """Extra keywords it was registered with (perturbations: needs_tagger, needs)."""
        return {}


@dataclass(frozen=True, kw_only=True)
class ModelLoader(Extension):
    """`load(target, allow_pickle=...) -> LoadedModel` for model specs starting with `name` (the prefix)."""

    load: Callable[..., Any]
    hook = "register_model_loaders"
    kind = "model loader"

    @property
    def value(self) -> Any:
        return self.load


@dataclass(frozen=True, kw_only=True)
class VocabularySource(Extension):
    """`load() -> Vocabulary | list[str]` for `probe neighbours -v NAME`."""

    load: Callable[[], Any]
    hook = "register_vocabularies"
    kind = "vocabulary"

    @property
    def value(self) -> Any:
        return self.load


@dataclass(frozen=True, kw_only=True)
class Perturbation(Extension):
    """`apply(tokens, rng[, tags]) -> list[str] | None`, a caption perturbation for word-order tests."""

    apply: Callable[..., Any]
    needs_tagger: bool = False
    needs: str = ""
    hook = "register_perturbations"
    kind = "perturbation"

    @property
    def value(self) -> Any:
        return self.apply

    @property
    def options(self) -> dict[str, Any]:
        return {"needs_tagger": self.needs_tagger, "needs": self.needs}


@dataclass(frozen=True, kw_only=True)
class StepKindPart(Extension):
    """An experiment step kind (`probe run`); `step` is the plugin's StepKind, its `run` checked."""

    step: Any
    hook = "register_experiment_steps"
    kind = "experiment step kind"

    @property
    def value(self) -> Any:
        return self.step


@dataclass(frozen=True, kw_only=True)
class InvertPart(Extension):
    """A factory for an invert transform, parameterisation or prior (`kind` says which), and the
    pydantic model of its options (None: the part takes its options as a plain mapping)."""

    make: Callable[..., Any]
    options_model: Any = None

    @property
    def value(self) -> Any:
        return self.make


@dataclass(frozen=True, kw_only=True)
class InvertTransform(InvertPart):
    hook = "register_invert_transforms"
    kind = "invert transform"


@dataclass(frozen=True, kw_only=True)
class InvertParam(InvertPart):
    hook = "register_invert_params"
    kind = "invert parameterisation"


@dataclass(frozen=True, kw_only=True)
class InvertPrior(InvertPart):
    hook = "register_invert_priors"
    kind = "invert prior"


@dataclass(frozen=True, kw_only=True)
class LabelSet(Extension):
    """An attribute label set for the audits: a mapping attribute -> prompts, or a YAML path."""

    labels: dict | str | os.PathLike
    hook = "register_label_sets"
    kind = "label set"

    @property
    def value(self) -> Any:
        return self.labels


@dataclass(frozen=True, kw_only=True)
class ApiFunction(Extension):
    """A function reachable as `probe.<name>`."""

    function: Callable[..., Any]
    hook = "register_python_api"
    kind = "Python API function"

    @property
    def value(self) -> Any:
        return self.function


#: hook -> record class, in the order `probe plugins --hooks` lists them.
RECORDS: dict[str, type[Extension]] = {
    cls.hook: cls
    for cls in (
        ModelLoader,
        VocabularySource,
        Perturbation,
        StepKindPart,
        InvertTransform,
        InvertParam,
        InvertPrior,
        LabelSet,
        ApiFunction,
    )
}

#: hook -> kind label, for messages.
KINDS = {hook: cls.kind for hook, cls in RECORDS.items()}

E = TypeVar("E", bound=Extension)


class Found(dict[str, E], Generic[E]):
    """Name -> record for one kind (built-ins first); `require` is the lookup with the one-line error."""

    def __init__(self, items: dict[str, E], kind: str, off: str = "") -> None:
        super().__init__(items)
        self.kind = kind
        self.off = off  # names the plugins that are not running and how to turn each on; "" when none is off

    def hint(self, *other: str) -> str:
        """`other` hints followed by the plugins that are off, for a consumer's own 'unknown' message."""
        return "; ".join(h for h in (*other, self.off) if h)

    def require(self, name: str, need: str = "") -> E:
        """The record registered under `name`, or a ProbeError saying what exists and which plugins
        that are not running may provide it."""
        if name in self:
            return self[name]
        for_what = f" (needed by {need})" if need else ""
        known = ", ".join(self) or "none"
        raise ProbeError(
            f"unknown {self.kind} {name!r}{for_what}; known: {known}", hint=self.off or "see `probe plugins`"
        )
