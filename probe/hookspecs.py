"""The extension points of clip-probe, one pluggy hook each.

Every hook but `register_commands` receives a `register` callback: a plugin calls it once per thing
it adds. Built-in plugins use exactly these hooks. A plugin implements a hook by defining a function
of the same name and arguments, marked with `probe.plugin.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "probe"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_commands(app: Any) -> None:
    """Add commands to the `probe` Typer app (`@app.command("name")`). Keep heavy imports inside
    the command bodies so that `probe --help` stays fast."""


@hookspec
def register_model_loaders(register: Callable[..., None]) -> None:
    """`register(prefix, load, about="")`: model specs that start with `prefix` (e.g. "hf-transformers:")
    are loaded by `load(target, allow_pickle=...)`, which returns a `LoadedModel`."""


@hookspec
def register_vocabularies(register: Callable[..., None]) -> None:
    """`register(name, load, about="")`: `load()` returns a `Vocabulary` for `probe neighbours -v name`."""


@hookspec
def register_perturbations(register: Callable[..., None]) -> None:
    """`register(name, apply, about="", needs_tagger=False, needs="")`: `apply(tokens, rng)` returns the perturbed
    tokens, or None when the caption has nothing to perturb (with `needs_tagger`, `apply(tokens, rng, tags)`);
    `needs` says what a caption must have for it to apply (shown when it applies to none)."""


@hookspec
def register_experiment_steps(register: Callable[..., None]) -> None:
    """`register(StepKind(...))`: a step kind for experiment files (`probe run`)."""


@hookspec
def register_invert_transforms(register: Callable[..., None]) -> None:
    """`register(name, make, about="", options=Model)`: `make(options, model_size)` returns a transform
    `t(views, rng) -> views` applied to the augmented copies each step, when `name` is in the
    settings' `transforms` list; `Model` (pydantic) declares the part's options."""


@hookspec
def register_invert_params(register: Callable[..., None]) -> None:
    """`register(name, make, about="", options=Model)`: `make(options, model_size)` returns an
    initialiser `init(rng, size)` of an image parameterisation (parameters(), images(), resized(size),
    clamp_(), size), chosen by `param: name`."""


@hookspec
def register_invert_priors(register: Callable[..., None]) -> None:
    """`register(name, make, about="", options=Model)`: `make(options, model_size)` returns a prior
    `p(ctx) -> [B]` penalty per image, added with the weight given in the settings' `priors: {name: weight}`."""


@hookspec
def register_label_sets(register: Callable[..., None]) -> None:
    """`register(name, labels, about="")`: an attribute label set for the audits (`--labels name`);
    `labels` is a mapping attribute -> list of prompts, or a path to a label-set YAML file."""


@hookspec
def register_python_api(register: Callable[..., None]) -> None:
    """`register(name, function, about="")`: a function for scripts and notebooks, reachable as
    `probe.<name>` (e.g. `probe.invert(session, prompts)`). Return dataclasses, ideally with a
    `_repr_html_` so that Jupyter shows them as a table or an image grid."""
