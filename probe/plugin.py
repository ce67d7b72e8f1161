"""The public API for clip-probe plugins: everything a plugin (built-in or third-party) may import.

    from probe.plugin import hookimpl, current_session, UsageError

Names listed in `__all__` are the supported surface; they change only with a new `API_VERSION`
(see the plugin guide's versioning policy). Every other module of `probe` is internal, except
`probe.world`, the procedural shapes world the built-in model was trained on. Importing this
module is cheap: torch and open_clip load only when a heavy name (e.g. `Session`) is first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload, runtime_checkable

from probe.errors import ConfigError, DataError, ModelError, ProbeError, UsageError
from probe.hookspecs import hookimpl
from probe.registry import (
    API_VERSION,
    invert_params,
    invert_priors,
    invert_transforms,
    label_sets,
    model_loaders,
    perturbations,
    python_api,
    step_kinds,
    vocabularies,
)
from probe.registry import replacements as plugin_replacements
from probe.registry.checks import PluginError, check_prior_output
from probe.stats import Z95, Difference, Proportion, newcombe_interval, wilson_interval

if TYPE_CHECKING:
    import torch
    import typer

    from probe.registry import Registry
    from probe.session import Session

__all__ = [
    # hooks and versions
    "hookimpl",
    "API_VERSION",
    # what plugins registered, one typed accessor per kind
    "model_loaders",
    "vocabularies",
    "perturbations",
    "step_kinds",
    "invert_transforms",
    "invert_params",
    "invert_priors",
    "label_sets",
    "python_api",
    "plugin_replacements",
    # models and sessions (the model-loader kit: LoadedModel, fingerprint_id, hub_mode, network_available)
    "Session",
    "TextEncoder",
    "LoadedModel",
    "fingerprint_id",
    "hub_mode",
    "network_available",
    "current_session",
    "session_for",
    "release_session",
    "options",
    "GlobalOptions",
    "check_prompt_lengths",
    "check_model_files",
    "tokenizer_fingerprint",
    # errors (exit codes: ProbeError, ModelError, DataError, PluginError 1; UsageError, ConfigError 2)
    "ProbeError",
    "UsageError",
    "ConfigError",
    "DataError",
    "ModelError",
    "PluginError",
    "check_prior_output",
    # output for commands (console: print_json, print_table, table, note, echo, progress)
    "console",
    "print_json",
    "print_table",
    "note",
    "progress",
    "display_text",
    # what plugins register
    "Vocabulary",
    "make_vocabulary",
    "StepKind",
    "StepOptions",
    "StepOptionsModel",
    "Seeds",
    "TextList",
    "Name",
    "ModelSpecText",
    "PlanInput",
    "StepPlan",
    "StepContext",
    "Chunk",
    "Item",
    "Outcome",
    "chunked",
    # statistics for reports: Wilson intervals of shares, Newcombe intervals of their differences
    "Z95",
    "Proportion",
    "Difference",
    "wilson_interval",
    "newcombe_interval",
    "StepSummary",
    "SheetCell",
    # notebooks and tests
    "html_table",
    "Table",
    "html_image_grid",
    "run_cli",
    "loaded_plugins",
]

#: Importable from here for plugins written before the contract was narrowed, but not promised
#: stable: file helpers live in `probe.files.*`, the rest in their rooms (see the plugin guide).
UNLISTED = (
    "lookup",
    "registered",
    "save_text_snapshot",
    "BUILTIN_MODELS",
    "table",
    "atomic_write_bytes",
    "atomic_write_text",
    "write_json",
    "read_json",
    "write_png",
    "png_bytes",
    "pil_png_bytes",
    "load_image",
    "load_photo",
    "checked_stats",
    "stop_on_signals",
    "check_regular_file",
    "to_pil",
    "images_under",
    "contact_sheet",
    "contact_grid",
    "safe_name",
    "inside",
    "cache_dir",
    "content_hash",
    "hash_file",
    "file_lock",
    "folder_lock",
    "read_yaml",
    "parse_yaml",
    "YamlDoc",
    "data_files",
    "image_intact",
    "check_images",
    "check_prompts",
    "check_writable",
    "refuse_nul",
    "remove_stale_temp_files",
    "parse_seeds",
    "read_lines",
    "numbered_lines",
    "options_table",
    "quantised",
    "check_model_spec",
    "score_images",
    "zero_shot",
    "ScoreResult",
)


@runtime_checkable
class TextEncoder(Protocol):
    """What text-only commands need; both `Session` and the text-only snapshot satisfy it."""

    context_length: int

    @property
    def name(self) -> str: ...

    def tokenize(self, texts: list[str], truncate: bool = False) -> torch.Tensor: ...

    def encode_text(
        self, texts: list[str], batch_size: int = 256, truncate: bool = False, fast: bool = True
    ) -> torch.Tensor: ...

    def describe(self) -> dict: ...


@dataclass(frozen=True)
class GlobalOptions:
    """The global options of this invocation (`probe --model ... --out ... COMMAND`), config applied."""

    model: str
    device: str
    precision: str
    out_dir: Path
    seed: int | None
    allow_pickle: bool
    labeller: str | None
    debug: bool
    #: every `-m/--model` given, in order (empty when none was: then `model` is the config's or the
    #: default); a command that compares models runs each in turn (`session_for`, `release_session`)
    models: tuple[str, ...] = ()

    def open_options(self) -> dict:
        """How this process opens its audited model (spec, device, precision, pickle consent): what
        another process (a Ray worker) needs to open the same session."""
        return {
            "model": self.model,
            "device": self.device,
            "precision": self.precision,
            "allow_pickle": self.allow_pickle,
        }


def options(ctx: typer.Context) -> GlobalOptions:
    """The global options, from any command's context."""
    from probe.cli.state import get_state

    s = get_state(ctx)
    return GlobalOptions(
        s.model, s.device, s.precision, Path(s.out_dir), s.seed, s.allow_pickle, s.labeller, s.debug, tuple(s.models)
    )


@overload
def current_session(ctx: typer.Context, text_only: Literal[False] = False) -> Session: ...


@overload
def current_session(ctx: typer.Context, text_only: bool) -> Session | TextEncoder: ...


def current_session(ctx: typer.Context, text_only: bool = False) -> Session | TextEncoder:
    """The process's shared model, loaded on first use; never load a model yourself.

    text_only=True returns a `TextEncoder`: the loaded session if there is one, else the model's
    cached text snapshot (no open_clip import: about twice as fast a cold start), else the session.
    Several `-m` given to a command that takes one model is a one-line UsageError here.
    """
    from probe.cli.state import get_state

    state = get_state(ctx)
    return state.text_session if text_only else state.session


@overload
def session_for(ctx: typer.Context, model: str, text_only: Literal[False] = False) -> Session: ...


@overload
def session_for(ctx: typer.Context, model: str, text_only: bool) -> Session | TextEncoder: ...


def session_for(ctx: typer.Context, model: str, text_only: bool = False) -> Session | TextEncoder:
    """A session for another model spec (ensembles, labellers, each model a command compares),
    shared like the main one; text_only as for `current_session`."""
    from probe.cli.state import get_state

    state = get_state(ctx)
    return state.text_session_for(model) if text_only else state.session_for(model)


def release_session(ctx: typer.Context, model: str) -> None:
    """Free a model's session (and text snapshot) before the next model loads: a command that
    compares models holds one at a time, so its memory is that of the largest."""
    from probe.cli.state import get_state

    get_state(ctx).release(model)


def check_prompt_lengths(
    ctx: typer.Context, texts: list[str], model: str | None = None, truncate: bool = False
) -> None:
    """Texts longer than the model's context are a one-line UsageError now, before the model loads
    (only its tokenizer is built). `model` defaults to the global --model."""
    if not texts:
        return
    from probe.cli.console import status
    from probe.models.specs import parse_model_spec

    spec = model or options(ctx).model
    with status(f"loading {spec}…"):  # the model libraries' import is most of a cold start
        from probe.encoding.text import check_tokenizer_lengths as check
        from probe.models.loading import tokenizer_only

        tokenizer = tokenizer_only(parse_model_spec(spec))
    if tokenizer is not None:
        check(tokenizer, int(getattr(tokenizer, "context_length", 77) or 77), list(texts), truncate)


def check_model_files(ctx: typer.Context, model: str) -> None:
    """A model spec's local weights file or folder checked now (present, a known format, no pickle
    without --allow-pickle), before any model loads: e.g. a labeller, before the images it labels."""
    from probe.cli.state import get_state

    get_state(ctx).check_model_files(model)


def run_cli(*args: Any, plugins: dict[str, Any] | None = None) -> Any:
    """Run `probe ARGS...` in this process with extra plugin modules loaded (for a plugin's tests);
    returns Typer's Result: exit_code, stdout, output. A module given here stands in for the installed
    plugin of the same entry-point name or module, so a plugin's tests pass installed or not."""
    from typer.testing import CliRunner

    from probe.cli.app import build_app
    from probe.registry import _active

    extra = {name: _returning(module) for name, module in (plugins or {}).items()}
    before = list(_active)
    try:
        return CliRunner().invoke(build_app(extra), [str(a) for a in args])
    finally:
        _active[:] = before  # the test's plugins do not stay active after it


def _returning(module: Any) -> Callable[[], Any]:
    return lambda: module


@contextmanager
def loaded_plugins(plugins: dict[str, Any] | None = None) -> Iterator[Registry]:
    """Inside the block, the process's registry has `plugins` (name -> module) loaded beside the
    installed ones, standing in for an installed copy: `probe.<name>` and the accessors reach them.
    For testing a plugin's Python API functions in-process."""
    from probe.registry import Registry, _active, activate, discover

    before = list(_active)
    found, warnings = discover({name: _returning(module) for name, module in (plugins or {}).items()})
    try:
        yield activate(Registry(found, warnings))
    finally:
        _active[:] = before


def data_files() -> Any:
    """The word lists, flagged lists, prompt sets and label sets clip-probe ships (a Traversable)."""
    from importlib import resources

    return resources.files("probe.vocab")


def display_text(text: str) -> str:
    """A user-given text made safe for a terminal: control and bidi characters shown escaped."""
    from probe.cli.console import printable

    return printable(text)


_LAZY = {
    "lookup": "probe.registry",
    "registered": "probe.registry",
    "console": "probe",
    "Session": "probe.session",
    "LoadedModel": "probe.models.loading",
    "fingerprint_id": "probe.models.fingerprints",
    "hub_mode": "probe.models.hub",
    "network_available": "probe.models.hub",
    "BUILTIN_MODELS": "probe.models.specs",
    "save_text_snapshot": "probe.encoding.snapshot",
    "print_json": "probe.cli.console",
    "print_table": "probe.cli.console",
    "table": "probe.cli.console",
    "note": "probe.cli.console",
    "progress": "probe.cli.console",
    "atomic_write_bytes": "probe.files.atomic",
    "atomic_write_text": "probe.files.atomic",
    "write_json": "probe.files.atomic",
    "read_json": "probe.files.atomic",
    "write_png": "probe.files.images",
    "png_bytes": "probe.files.images",
    "pil_png_bytes": "probe.files.images",
    "load_image": "probe.files.images",
    "load_photo": "probe.files.images",
    "checked_stats": "probe.models.preprocess",
    "to_pil": "probe.files.images",
    "images_under": "probe.files.images",
    "contact_sheet": "probe.files.sheets",
    "contact_grid": "probe.files.sheets",
    "safe_name": "probe.files.names",
    "inside": "probe.files.names",
    "image_intact": "probe.files.images",
    "check_images": "probe.files.images",
    "check_prompts": "probe.files.checks",
    "check_writable": "probe.files.atomic",
    "refuse_nul": "probe.files.checks",
    "stop_on_signals": "probe.cli.stopping",
    "check_regular_file": "probe.files.checks",
    "remove_stale_temp_files": "probe.files.atomic",
    "folder_lock": "probe.files.cache",
    "cache_dir": "probe.files.cache",
    "content_hash": "probe.files.cache",
    "hash_file": "probe.files.cache",
    "file_lock": "probe.files.cache",
    "read_yaml": "probe.files.yamldoc",
    "parse_yaml": "probe.files.yamldoc",
    "YamlDoc": "probe.files.yamldoc",
    "Vocabulary": "probe.vocabulary",
    "make_vocabulary": "probe.vocabulary",
    "StepKind": "probe.step_kinds",
    "StepOptions": "probe.step_kinds",
    "StepOptionsModel": "probe.step_kinds",
    "Seeds": "probe.step_kinds",
    "TextList": "probe.step_kinds",
    "Name": "probe.step_kinds",
    "ModelSpecText": "probe.step_kinds",
    "options_table": "probe.step_kinds",
    "numbered_lines": "probe.step_kinds",
    "PlanInput": "probe.step_kinds",
    "StepPlan": "probe.step_kinds",
    "StepContext": "probe.step_kinds",
    "Chunk": "probe.step_kinds",
    "Item": "probe.step_kinds",
    "Outcome": "probe.step_kinds",
    "chunked": "probe.step_kinds",
    "check_model_spec": "probe.step_kinds",
    "parse_seeds": "probe.step_kinds",
    "read_lines": "probe.step_kinds",
    "SheetCell": "probe.step_kinds",
    "StepSummary": "probe.step_kinds",
    "quantised": "probe.step_kinds",
    "html_table": "probe.markup",
    "Table": "probe.markup",
    "html_image_grid": "probe.markup",
    "score_images": "probe.scores",
    "zero_shot": "probe.scores",
    "tokenizer_fingerprint": "probe.encoding.tokenizer",
    "ScoreResult": "probe.scores",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = import_module(_LAZY[name])
        value = import_module("probe.cli.console") if name == "console" else getattr(module, name.removeprefix("html_"))
        globals()[name] = value
        return value
    raise AttributeError(f"module 'probe.plugin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
