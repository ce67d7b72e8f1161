"""The engine's entry for commands and scripts: an experiment (a YAML file or its mapping) run into a
run folder, with the caller's way to open sessions, show progress and check texts. `probe run` and
the audits' `probe bias` / `probe nsfw` all start here (the audits reach it through the registry as
`probe.run_experiment`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.plugin import (
    ConfigError,
    UsageError,
    YamlDoc,
    check_writable,
    folder_lock,
    python_api,
    read_json,
    safe_name,
    step_kinds,
    write_json,
)
from probe_run.engines import EngineOptions, Executor, LocalExecutor, open_ray
from probe_run.experiment import (
    Plan,
    load_experiment,
    normalise,
    parse_shard,
    plan_from_spec,
    spec_for_model,
    steps_digest,
)
from probe_run.runner import RunResult, finalise, run_plan

Progress = Callable[..., AbstractContextManager[Callable[..., Any]]]
RATES = "{task.fields[info]}"  # the progress bar's column of per-worker throughput (engines other than local)


def plan_experiment(experiment: str | Path | dict, what: str = "experiment") -> Plan:
    """The plan of an experiment file, or of a mapping written as one (`what` names it in errors)."""
    if isinstance(experiment, dict):
        return plan_from_spec(normalise(YamlDoc(what, experiment)))
    return load_experiment(Path(experiment))


def step_texts(plan: Plan) -> list[str]:
    """Every text the plan's steps will encode with the audited model (for the pre-flight length check)."""
    texts: list[str] = []
    for step in plan.steps:
        kind = step_kinds().require(step.kind).step
        texts += kind.texts(step.options) if kind.texts else []
    return list(dict.fromkeys(texts))


def run_folder(out_dir: Path, name: str, shard: tuple[int, int] | None) -> Path:
    """The default run folder: OUT/runs/NAME, or OUT/runs/NAME.shard-I-of-N for a shard."""
    suffix = f".shard-{shard[0]}-of-{shard[1]}" if shard else ""
    return Path(out_dir) / "runs" / f"{safe_name(name)}{suffix}"


def run_experiment(
    experiment: str | Path | dict,
    open_session: Callable[[str | None], Any],
    *,
    run_dir: Path | None = None,
    out_dir: Path = Path("probe-out"),
    shard: str | tuple[int, int] | None = None,
    resume: bool = False,
    source: str | None = None,
    blur: bool = True,
    progress: Progress | None = None,
    check_texts: Callable[[list[str], str | None], None] | None = None,
    check_model: Callable[[str], None] | None = None,
    what: str = "experiment",
    should_stop: Callable[[], bool] | None = None,
    engine: str | dict | EngineOptions = "local",
    note: Callable[[str], None] | None = None,
) -> RunResult:
    """Run an experiment (or one shard of it, `shard="I/N"`) into its run folder and write the summaries.

    `open_session(spec)` gives the session of a model spec (None: the audited model when the
    experiment names none); `progress(name, total)` is a context manager yielding
    `advance(n, info=...)`; `check_texts(texts, model)` may refuse too-long prompts before any model
    loads. `engine` says where chunks run: "local" (this process) or the fields of `EngineOptions`
    (`{"engine": "ray", "workers": 2, "session": {...}}`: Ray actors, each opening its own session
    from `session`); `note(line)` gets what the engine says before the run (e.g. the Ray dashboard).
    `check_model(spec)` may refuse a step's other model (a labeller) whose files cannot load.
    `should_stop()`, asked after each chunk, ends the run early (what is finished is kept).
    An experiment with `models:` is a comparison: run it with `run_comparison`.
    """
    options = _engine_options(engine)
    plan = plan_experiment(experiment, what)
    if plan.models:
        raise UsageError(
            f"experiment {plan.name!r} compares {len(plan.models)} models (models:)",
            hint="run it with probe.run_comparison (the CLI's `probe run` does), or name one model with model:",
        )
    where = parse_shard(shard) if isinstance(shard, str) else shard
    folder = Path(run_dir) if run_dir is not None else run_folder(out_dir, plan.name, where)
    if check_texts is not None:
        check_texts(step_texts(plan), plan.model)  # before the model loads and any step runs
    if check_model is not None:
        _check_labellers(plan, check_model)
    check_writable(folder)
    with folder_lock(folder, "run"):  # fail now if another run holds the folder (run_plan holds it while running)
        pass
    return _run_one(
        plan, folder, open_session, where, resume, source, blur, progress, should_stop, plan.name, options, note
    )


def _run_one(
    plan: Plan,
    folder: Path,
    open_session: Callable[[str | None], Any],
    where: tuple[int, int] | None,
    resume: bool,
    source: str | None,
    blur: bool,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
    title: str,
    options: EngineOptions,
    note: Callable[[str], None] | None,
) -> RunResult:
    """One model's run into one folder on the engine `options` names, with a progress bar named `title`."""
    total = len([it for c in plan.chunks_for(where) for it in c.items])
    seen = {"done": 0}
    with _executor(options, plan, note) as executor:
        # a local run opens the audited model here; Ray workers open their own
        session = open_session(plan.model) if options.engine == "local" else None
        bar: AbstractContextManager[Any] = nullcontext(None)
        if progress is not None:
            bar = progress(title, total, *(() if options.engine == "local" else (RATES,)))
        with bar as advance:

            def on_progress(done: int, _total: int, _step: str) -> None:
                if advance is not None:
                    rates = " · ".join(w.rate() for w in executor.workers()) if options.engine != "local" else ""
                    advance(done - seen["done"], **({"info": rates} if rates else {}))
                seen["done"] = done

            result = run_plan(
                plan,
                folder,
                session,
                open_session if session is not None else None,
                shard=where,
                resume=resume,
                source=source,
                on_progress=on_progress,
                should_stop=should_stop,
                executor=executor,
            )
        del session
    if not blur:
        finalise(result.folder, plan, blur=False)
    return result


# ---------------------------------------------------------------- comparisons: one experiment, several models

COMPARISON_FORMAT = "clip-probe-comparison/1"
COMPARISON_FILE = "comparison.json"


@dataclass
class ComparisonResult:
    """What a comparison run did: each model's RunResult in order, and the comparison written (if any)."""

    folder: Path
    plan: Plan
    runs: dict[str, RunResult]
    compared: bool = False
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        return max((r.exit_code for r in self.runs.values()), default=0)

    def notes(self) -> list[str]:
        out = [line for spec, r in self.runs.items() for line in [f"{spec}:", *r.notes()]]
        if self.interrupted:
            out.append(f"stopped before every model ran: continue with --resume ({self.folder})")
        elif self.compared:
            out.append(f"comparison written to {self.folder}")
        return out

    def summary(self) -> dict[str, dict]:
        """Each model's summary.json, keyed by model spec."""
        return {spec: r.summary() for spec, r in self.runs.items()}

    def as_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "experiment": self.plan.name,
            "models": {spec: r.as_dict() for spec, r in self.runs.items()},
            "compared": self.compared,
            "interrupted": self.interrupted,
        }


def comparison_models(plan: Plan, given: list[str] | tuple[str, ...] | None) -> tuple[list[str], list[str]] | None:
    """(the comparison's models, those to run now), or None for a one-model run.

    With `models:` in the file, `given` (the command line's -m) picks which of them to run (a Slurm
    array task runs one); without it, two or more given models make the comparison."""
    given = list(dict.fromkeys(given or []))
    if plan.models:
        unknown = [m for m in given if m not in plan.models]
        if unknown:
            raise UsageError(
                f"model {unknown[0]!r} is not one of experiment {plan.name!r}'s models ({', '.join(plan.models)})",
                hint="pick models of its models: list with -m, or give no -m to run them all",
            )
        return plan.models, [m for m in plan.models if m in given] or plan.models
    if len(given) > 1:
        return given, given
    return None


def model_folder(comparison: Path, model: str, shard: tuple[int, int] | None) -> Path:
    """A model's run folder in a comparison folder: its spec as a safe name (+ .shard-I-of-N)."""
    suffix = f".shard-{shard[0]}-of-{shard[1]}" if shard else ""
    return Path(comparison) / f"{safe_name(model)}{suffix}"


def _comparison_manifest(plan: Plan, models: list[str]) -> dict:
    """comparison.json: the experiment and each model's (unsharded) folder, in order; no timestamps,
    so every run and Slurm task of one comparison writes the same bytes."""
    return {
        "format": COMPARISON_FORMAT,
        "experiment": plan.name,
        "digest": steps_digest(plan.spec),
        "models": [{"model": m, "folder": model_folder(Path(), m, None).as_posix()} for m in models],
    }


def _check_comparison(folder: Path, manifest: dict) -> None:
    """Refuse a folder that holds a one-model run, other files, or a comparison of other models or
    steps (hidden lock and temporary files do not count: Slurm tasks of one comparison share it)."""
    path = folder / COMPARISON_FILE
    if (folder / "manifest.json").is_file():
        raise UsageError(
            f"{folder} holds a one-model run, not a comparison", hint="choose another folder with --run-dir"
        )
    if path.is_file():
        old = read_json(path)
        if old.get("digest") != manifest["digest"]:
            raise ConfigError(f"{folder} compares a different experiment", hint="use the same file, or a new folder")
        if old.get("models") != manifest["models"]:
            listed = ", ".join(m.get("model", "?") for m in old.get("models") or [])
            raise ConfigError(f"{folder} compares other models ({listed})", hint="use the same models, or a new folder")
    elif folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir()):
        raise UsageError(
            f"output folder {folder} is not empty and holds no comparison", hint="choose another folder with --run-dir"
        )


def run_comparison(
    experiment: str | Path | dict,
    open_session: Callable[[str | None], Any],
    *,
    models: list[str] | tuple[str, ...] | None = None,
    release_session: Callable[[str], None] | None = None,
    run_dir: Path | None = None,
    out_dir: Path = Path("probe-out"),
    shard: str | tuple[int, int] | None = None,
    resume: bool = False,
    source: str | None = None,
    blur: bool = True,
    progress: Progress | None = None,
    check_texts: Callable[[list[str], str | None], None] | None = None,
    check_model: Callable[[str], None] | None = None,
    what: str = "experiment",
    should_stop: Callable[[], bool] | None = None,
    engine: str | dict | EngineOptions = "local",
    note: Callable[[str], None] | None = None,
) -> ComparisonResult:
    """Run one experiment on several models, one model loaded at a time, each into its own run folder
    under one comparison folder (OUT/runs/NAME/<model>[.shard-I-of-N]/ and comparison.json).

    The models are the file's `models:` (`models` picks some of them) or, without it, `models`
    (two or more). Each model's folder is exactly the run folder of the experiment with that one
    model, so resume, shards and merge work per model as for any run. `release_session(spec)` frees
    a model before the next loads. When every model's folder is complete and a Python API named
    `compare` is registered, its comparison is written into the comparison folder.
    """
    options = _engine_options(engine)
    plan = plan_experiment(experiment, what)
    chosen = comparison_models(plan, models)
    if chosen is None:
        raise UsageError(
            f"experiment {plan.name!r} names no models to compare",
            hint="list them under models: in the file, or give -m twice or more",
        )
    listed, to_run = chosen
    where = parse_shard(shard) if isinstance(shard, str) else shard
    folder = Path(run_dir) if run_dir is not None else Path(out_dir) / "runs" / safe_name(plan.name)
    plans = {m: plan_from_spec(spec_for_model(plan.spec, m)) for m in listed}
    folders = {m: model_folder(folder, m, where) for m in to_run}
    manifest = _comparison_manifest(plan, listed)
    _check_comparison(folder, manifest)
    for m in to_run:  # every refusal before the first model loads
        if check_texts is not None:
            check_texts(step_texts(plans[m]), m)
        if check_model is not None:
            _check_labellers(plans[m], check_model)
        if (folders[m] / "manifest.json").is_file() and not resume:
            raise UsageError(
                f"{folders[m]} already holds a run", hint="pass --resume to continue it, or choose another folder"
            )
    check_writable(folder)
    for m in to_run:
        with folder_lock(folders[m], "run"):  # another run of this model's folder is refused now
            pass
    write_json(folder / COMPARISON_FILE, manifest)  # the same bytes whichever run or Slurm task writes it
    result = ComparisonResult(folder, plan, {})
    for m in to_run:
        title = f"{plan.name} · {m}"
        run = _run_one(
            plans[m], folders[m], open_session, where, resume, source, blur, progress, should_stop, title, options, note
        )
        result.runs[m] = run
        if release_session is not None:
            release_session(m)  # one model in memory at a time
        if run.counts.get("pending", 0):  # stopped (should_stop): the next models wait for --resume
            result.interrupted = True
            return result
    if where is None:
        result.compared = _write_comparison(folder, [model_folder(folder, m, None) for m in listed])
    return result


def _write_comparison(folder: Path, folders: list[Path]) -> bool:
    """The registered `compare` API's comparison of complete model folders, written into the
    comparison folder; False (nothing written) without it or while a model's folder is unfinished."""
    compare = python_api().get("compare")
    if compare is None:
        return False
    for f in folders:
        if not (f / "manifest.json").is_file() or read_json(f / "manifest.json")["counts"].get("pending", 0):
            return False
    compare.function(folders).write(folder)
    return True


def _executor(
    options: EngineOptions, plan: Plan, note: Callable[[str], None] | None
) -> AbstractContextManager[Executor]:
    """The engine's executor as a context manager (Ray's starts and stops its workers)."""
    if options.engine == "ray":
        return open_ray(options, plan, note)
    return nullcontext(LocalExecutor())


def _engine_options(engine: str | dict | EngineOptions) -> EngineOptions:
    if isinstance(engine, EngineOptions):
        return engine.check()
    return (EngineOptions(engine) if isinstance(engine, str) else EngineOptions(**engine)).check()


def _check_labellers(plan: Plan, check_model: Callable[[str], None]) -> None:
    """Refuse, before any model loads, a step's labeller whose files cannot load."""
    for spec in dict.fromkeys(s.options["labeller"] for s in plan.steps if s.options.get("labeller")):
        check_model(spec)
