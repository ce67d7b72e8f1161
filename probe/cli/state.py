"""Per-process CLI state: the global options and the lazily loaded, shared model session(s).

Kept free of heavy imports so plugins can import it at their top level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from probe.encoding.snapshot import TextSnapshot
    from probe.session import Session


@dataclass
class State:
    """Global options; `session` loads the model on first use and every probe reuses it."""

    model: str = "shapes-tiny"
    device: str = "auto"
    precision: str = "fp32"
    out_dir: Path = Path("probe-out")
    seed: int | None = None
    debug: bool = False
    allow_pickle: bool = False
    labeller: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    models: list[str] = field(default_factory=list)  # every -m/--model given, in order (empty: none given)
    command: str | None = None
    loads: int = 0
    _sessions: dict[str, Session] = field(default_factory=dict)
    _snapshots: dict[str, TextSnapshot | None] = field(default_factory=dict)

    @property
    def session(self) -> Session:
        self.check_one_model()
        return self.session_for(self.model)

    @property
    def text_session(self) -> Session | TextSnapshot:
        self.check_one_model()
        return self.text_session_for(self.model)

    def text_session_for(self, model: str) -> Session | TextSnapshot:
        """For commands that only encode text: the loaded session if there is one, else the model's
        text snapshot when it has one (no open_clip import: a faster cold start), else the session."""
        if model in self._sessions:
            return self._sessions[model]
        if model not in self._snapshots:
            self.check_device()
            from probe.cli.console import status

            with status(f"loading {model} (text tower)…"):
                from probe.encoding.snapshot import open_text_snapshot

                self._snapshots[model] = open_text_snapshot(model, self.device, self.precision, self.allow_pickle)
        return self._snapshots[model] or self.session_for(model)

    def check_one_model(self) -> None:
        """A command that takes one model refuses several -m before any loads (one line, exit 2)."""
        if len(self.models) > 1:
            from probe.errors import UsageError

            what = f"`probe {self.command}`" if self.command else "this command"
            raise UsageError(
                f"{what} takes one model, but -m/--model was given {len(self.models)} times: {', '.join(self.models)}",
                hint="give one -m, or run it once per model (run, bias, nsfw, neighbours, shuffle-test compare models)",
            )

    def release(self, model: str) -> None:
        """Drop a model's session and text snapshot so its memory is freed before the next model loads."""
        dropped = [self._sessions.pop(model, None), self._snapshots.pop(model, None)]
        if not any(d is not None for d in dropped):
            return
        del dropped
        import gc
        import sys

        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()  # give the freed blocks back, so the next model's peak is its own
        elif torch is not None and torch.backends.mps.is_available():
            torch.mps.empty_cache()

    def check_device(self) -> None:
        """A device that is absent is a usage error before the model libraries and weights load."""
        if self.device not in ("auto", "cpu"):
            from probe.devices import resolve_device

            resolve_device(self.device)

    def check_model_files(self, model: str) -> None:
        """A model spec's local weights checked now (present, a known format, no pickle without
        --allow-pickle), before any model loads: a labeller that cannot load fails before the work
        whose images it would label."""
        from probe.models.fingerprints import local_dir_files
        from probe.models.specs import check_weights_file, parse_model_spec

        spec = parse_model_spec(model)
        if spec.kind == "file" and spec.weights:
            check_weights_file(Path(spec.weights), self.allow_pickle)
        elif spec.kind == "local-dir":
            local_dir_files(spec, self.allow_pickle)

    def session_for(self, model: str) -> Session:
        """One Session per model spec per process: a second probe (or step) reuses the loaded one."""
        if model not in self._sessions:
            self.check_device()
            from probe.cli.console import status

            with status(f"loading {model}…"):  # torch and open_clip imports included: most of a cold start
                from probe.session import Session

                self._sessions[model] = Session.open(model, self.device, self.precision, self.allow_pickle)
            self.loads += 1
        return self._sessions[model]


def get_state(ctx: typer.Context) -> State:
    """The root State from any nested command context."""
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj
