"""Engines: how a run's chunks get computed. An engine turns (step, chunk) pairs into outcomes and
nothing else; the driver (runner.py) alone writes the run folder, so every engine leaves the same
files. `local` computes chunks in order in this process; `ray` (ray_engine.py, imported only when
asked for) hands the same chunks to actors that each hold one session and yields outcomes as they
arrive. Chunks are the unit everywhere, so batches, and with them results, match between engines.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from probe.plugin import Chunk, Outcome, ProbeError, StepContext, StepPlan, UsageError, step_kinds

ENGINES = ("local", "ray")
Work = list[tuple[StepPlan, Chunk]]
Done = tuple[StepPlan, Chunk, list[Outcome]]


def run_chunk(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    """Compute one chunk with its registered kind; a ProbeError fails the chunk's items with its message."""
    try:
        return step_kinds().require(step.kind, need=f"step {step.name!r}").step.run(step, chunk, ctx)
    except ProbeError as exc:
        return [Outcome(it.id, "failed", message=str(exc)) for it in chunk.items]


@dataclass
class WorkerStats:
    """What one worker did: chunks and items computed, seconds spent computing them, and the seconds
    its chunks spent travelling and waiting (round trip minus compute: the engine's overhead)."""

    name: str
    device: str = ""
    node: str = ""
    chunks: int = 0
    items: int = 0
    seconds: float = 0.0
    overhead: float = 0.0
    lost: int = 0  # chunks this worker was computing when it died (computed again elsewhere)

    def add(self, items: int, seconds: float, round_trip: float) -> None:
        self.chunks += 1
        self.items += items
        self.seconds += seconds
        self.overhead += max(0.0, round_trip - seconds)

    def rate(self) -> str:
        """Items per second of compute, e.g. `w0 3.2/s` (what the progress bar shows per worker)."""
        return f"{self.name} {self.items / self.seconds:.2f}/s" if self.seconds > 0 else f"{self.name} -"

    def as_dict(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class Executor(Protocol):
    """Computes chunks for the driver. `compute` may yield chunks in any order and is called once per
    step (a step may read the files of earlier steps, which the driver writes as outcomes arrive)."""

    name: str

    def model(self, ctx: StepContext) -> dict:
        """The audited model's description for the manifest (and the resume check)."""
        ...

    def compute(self, work: Work, ctx: StepContext) -> Generator[Done, None, None]: ...

    def workers(self) -> list[WorkerStats]: ...


class LocalExecutor:
    """Every chunk in plan order, in this process, with the driver's session."""

    name = "local"

    def __init__(self) -> None:
        self._stats = WorkerStats("local")

    def model(self, ctx: StepContext) -> dict:
        return ctx.session.describe()

    def compute(self, work: Work, ctx: StepContext) -> Generator[Done, None, None]:
        for step, chunk in work:
            start = time.perf_counter()
            outcomes = run_chunk(step, chunk, ctx)  # the whole chunk, so batches match any other run
            seconds = time.perf_counter() - start
            self._stats.device = self._stats.device or str(getattr(ctx.session, "device", ""))
            self._stats.add(len(chunk.items), seconds, seconds)
            yield step, chunk, outcomes

    def workers(self) -> list[WorkerStats]:
        return [self._stats]


@dataclass(frozen=True)
class EngineOptions:
    """Where chunks run: `local`, or `ray` with `workers` actors (default: one per GPU, else one) on a
    local Ray or the cluster at `address` (`auto`, `ray://HOST:PORT`). `session` holds how workers open
    their own sessions: model, device, precision, allow_pickle (the driver's resolved options)."""

    engine: str = "local"
    workers: int | None = None
    address: str | None = None
    session: dict | None = None

    def check(self) -> EngineOptions:
        """The options if they make sense (and Ray is installed for `ray`), before any model loads."""
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}", hint="use --engine local or --engine ray")
        if self.workers is not None and self.workers < 1:
            raise UsageError(f"--workers must be at least 1, got {self.workers}")
        if self.engine == "local" and (self.workers is not None or self.address):
            raise UsageError("--workers and --address need --engine ray", hint="add --engine ray")
        if self.engine == "ray":
            try:
                import ray  # noqa: F401
            except ImportError:
                raise UsageError(
                    "--engine ray needs Ray, which is not installed",
                    hint='in the clip-probe folder: pip install -e ".[ray]"',
                ) from None
        return self


def open_ray(options: EngineOptions, plan: Any, note: Callable[[str], None] | None) -> Any:
    """The Ray executor (a context manager that starts and stops its workers)."""
    from probe_run.ray_engine import RayExecutor

    return RayExecutor(options, plan, note)
