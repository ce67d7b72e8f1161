"""The Ray engine: a run's chunks computed by Ray actors, one session (one loaded model, one device)
per actor, outcomes yielded to the driver as they arrive. Imported only for `--engine ray`.

Actors get the plan once and then a chunk at a time; they read the run folder (a step may label
an earlier step's images) but never write it: outcomes come back as arrays, and the driver writes
them exactly as a local run does. An actor that dies has its chunk computed again on another one
(MAX_ATTEMPTS in all, then the chunk's items fail with the reason); a step's own error ends the run
as it would locally.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import RayActorError, RayTaskError

from probe.plugin import Chunk, Outcome, ProbeError, StepContext, UsageError, step_kinds
from probe_run.engines import Done, EngineOptions, Work, WorkerStats, run_chunk

MAX_ATTEMPTS = 3  # a chunk whose worker died this many times fails (it may be what kills them)
ENV_PREFIXES = ("PROBE_", "HF_", "TORCH_HOME", "OPENCLIP_", "XDG_CACHE_HOME")  # what workers must see alike


@ray.remote
class ChunkWorker:
    """One session on one device (the actor's GPU, else the driver's CPU-side device) computing
    chunks of one plan with the registered step kinds."""

    def __init__(self, name: str, plan: Any, session: dict, threads: int | None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)  # CPU workers share the machine's cores
        self.name, self.plan = name, plan
        wanted = str(session.get("device") or "auto")
        gpu = bool(ray.get_gpu_ids())
        self.device = "cuda" if gpu else ("cpu" if wanted == "auto" or wanted.startswith("cuda") else wanted)
        self.open_options = {
            "device": self.device,
            "precision": session.get("precision", "fp32"),
            "allow_pickle": bool(session.get("allow_pickle", False)),
        }
        self.sessions: dict[str, Any] = {}
        self.failed: Exception | None = None
        try:
            self.session = self.open(plan.model or session.get("model"))
        except Exception as exc:  # kept for describe(): the driver shows it as a local run would
            self.failed = exc

    def open(self, spec: str | None) -> Any:
        """A session per model spec, opened once per actor (the audited model, labellers); None:
        the default model."""
        from probe.plugin import Session

        key = spec or ""
        if key not in self.sessions:
            self.sessions[key] = Session.open(spec, **self.open_options) if spec else Session.open(**self.open_options)
        return self.sessions[key]

    def describe(self) -> dict:
        if self.failed is not None:
            raise self.failed
        return {
            "model": self.session.describe(),
            "device": self.device,
            "node": ray.get_runtime_context().get_node_id(),
        }

    def run(self, step_name: str, chunk: Chunk, folder: str) -> tuple[list[Outcome], dict, float]:
        """(outcomes with images as float32 arrays, labellers used, compute seconds) of one chunk."""
        start = time.perf_counter()
        step = self.plan.step(step_name)
        kind = step_kinds().get(step.kind)
        # a step that follows an earlier step's chunks (e.g. `label`) reads that step's files
        if kind is not None and not kind.step.uses_slots and not Path(folder).is_dir():
            raise ProbeError(
                f"step {step_name!r} reads the run folder {folder}, which the node of Ray worker {self.name} "
                "does not see",
                hint="give --run-dir on a filesystem every node of the cluster shares",
            )
        ctx = StepContext(self.session, self.open, Path(folder), None, {})
        outcomes = run_chunk(step, chunk, ctx)
        for outcome in outcomes:
            if outcome.image is not None:
                outcome.image = outcome.image.detach().float().cpu().numpy()
        return outcomes, ctx.labellers, time.perf_counter() - start


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


def _cause(exc: RayTaskError) -> BaseException:
    """The exception a worker raised (a ProbeError keeps its one-line message and hint)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


class RayExecutor:
    """The Ray engine as a context manager: entering starts (or joins) Ray and its actors and loads
    their models; leaving stops the actors, and Ray when this run started it."""

    name = "ray"

    def __init__(self, options: EngineOptions, plan: Any, note: Callable[[str], None] | None = None) -> None:
        self.options, self.plan, self.note = options, plan, note
        self.actors: dict[str, Any] = {}
        self.busy: dict[str, Chunk] = {}  # worker name -> the chunk it is computing
        self.stats: dict[str, WorkerStats] = {}
        self.started = False
        self.described: dict = {}
        self._sigterm: Any = None

    # ------------------------------------------------------------ lifecycle

    def __enter__(self) -> RayExecutor:
        try:
            self._start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _start(self) -> None:
        if not ray.is_initialized():
            try:
                context = ray.init(
                    address=self.options.address or "local",  # without --address: a Ray of this run's own
                    log_to_driver=False,
                    logging_level=logging.ERROR,
                    configure_logging=True,
                )
            except (ConnectionError, ValueError, RuntimeError) as exc:
                where = self.options.address or "a local Ray"
                raise UsageError(
                    f"cannot start or join Ray at {where}: {_first_line(exc)}",
                    hint="check --address (auto, or ray://HOST:PORT of a running cluster)",
                ) from None
            self.started = True
            url = getattr(context, "dashboard_url", "")
            if url and self.note:
                self.note(f"Ray dashboard: http://{url}")
        self._catch_sigterm()
        resources = ray.cluster_resources()
        session = dict(self.options.session or {})
        device = str(session.get("device") or "auto")
        gpus = 0 if device == "cpu" else int(resources.get("GPU", 0))
        cpus = max(1, int(resources.get("CPU", 1)))
        count = self.options.workers or gpus or 1
        if gpus:  # one actor per GPU (several share one when --workers asks for more)
            placement: dict[str, Any] = {"num_gpus": min(1.0, gpus / count), "num_cpus": min(1.0, cpus / count)}
            threads = None
        else:  # the cores divided between the workers
            threads = max(1, cpus // count)
            placement = {"num_cpus": min(float(threads), cpus / count)}
        for i in range(count):
            name = f"w{i}"
            worker = ChunkWorker.options(**placement, runtime_env={"env_vars": _env()})  # type: ignore[attr-defined]
            self.actors[name] = worker.remote(name, self.plan, session, threads)
        names = list(self.actors)
        try:
            found = ray.get([self.actors[n].describe.remote() for n in names])
        except RayTaskError as exc:  # the model failed to load: the same one-line error as locally
            raise _cause(exc) from None
        for name, info in zip(names, found, strict=True):
            self.stats[name] = WorkerStats(name, info["device"], info["node"][:8])
        self.described = found[0]["model"]

    def __exit__(self, *exc: Any) -> None:
        for actor in self.actors.values():
            with contextlib.suppress(Exception):  # already dead, or Ray already gone: nothing to stop
                ray.kill(actor)
        self.actors.clear()
        if self.started:
            ray.shutdown()
            self.started = False
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, self._sigterm)
            self._sigterm = None

    def _catch_sigterm(self) -> None:
        """SIGTERM (Slurm, Kubernetes, kill) stops the driver like Ctrl-C: finished items stay written."""
        if threading.current_thread() is not threading.main_thread():
            return

        def interrupt(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        self._sigterm = signal.signal(signal.SIGTERM, interrupt)

    # ------------------------------------------------------------ the Executor protocol

    def model(self, ctx: StepContext) -> dict:
        return self.described

    def workers(self) -> list[WorkerStats]:
        return list(self.stats.values())

    def compute(self, work: Work, ctx: StepContext) -> Generator[Done, None, None]:
        """Each idle actor gets the next chunk; outcomes are yielded in the order chunks finish."""
        import torch

        queue = deque(work)
        attempts: Counter = Counter()
        idle = deque(self.actors)
        flying: dict[Any, tuple[str, Any, Chunk, float]] = {}
        try:
            while queue or flying:
                while queue and idle:
                    name = idle.popleft()
                    step, chunk = queue.popleft()
                    ref = self.actors[name].run.remote(step.name, chunk, str(ctx.folder))
                    flying[ref] = (name, step, chunk, time.perf_counter())
                    self.busy[name] = chunk
                if not flying:
                    raise ProbeError(
                        "every Ray worker died; the items not yet computed stay pending",
                        hint="rerun with --resume to continue",
                    )
                ready, _ = ray.wait(list(flying), num_returns=1)
                name, step, chunk, sent = flying.pop(ready[0])
                self.busy.pop(name, None)
                try:
                    outcomes, labellers, seconds = ray.get(ready[0])
                except RayActorError as exc:  # the actor died (killed, out of memory, node lost)
                    reason = _first_line(exc)
                    self.actors.pop(name, None)
                    self.stats[name].lost += 1
                    key = (chunk.step, chunk.index)
                    attempts[key] += 1
                    if attempts[key] < MAX_ATTEMPTS:
                        queue.appendleft((step, chunk))
                        continue
                    message = f"Ray worker died {attempts[key]} times computing this chunk: {reason}"
                    yield step, chunk, [Outcome(it.id, "failed", message=message) for it in chunk.items]
                    continue
                except RayTaskError as exc:  # the step's own error: the run stops as a local run would
                    raise _cause(exc) from None
                idle.append(name)
                self.stats[name].add(len(chunk.items), seconds, time.perf_counter() - sent)
                ctx.labellers.update(labellers)
                for outcome in outcomes:
                    if outcome.image is not None:
                        outcome.image = torch.from_numpy(outcome.image.copy())  # a writable copy of the received array
                yield step, chunk, outcomes
        finally:
            self.busy.clear()  # chunks still in flight are dropped with the run (their items stay pending)
