"""The engine's entry for commands and scripts: an experiment (a YAML file or its mapping) run into a
run folder, with the caller's way to open sessions, show progress and check texts. `probe run` and
the audits' `probe bias` / `probe nsfw` all start here (the audits reach it through the registry as
`probe.run_experiment`)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from probe.plugin import YamlDoc, check_writable, folder_lock, safe_name, step_kinds
from probe_run.experiment import Plan, load_experiment, normalise, parse_shard, plan_from_spec
from probe_run.runner import RunResult, finalise, run_plan

Progress = Callable[[str, int], AbstractContextManager[Callable[[int], Any]]]


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
    what: str = "experiment",
    should_stop: Callable[[], bool] | None = None,
) -> RunResult:
    """Run an experiment (or one shard of it, `shard="I/N"`) into its run folder and write the summaries.

    `open_session(spec)` gives the session of a model spec (None: the audited model when the
    experiment names none); `progress(name, total)` is a context manager yielding `advance(n)`;
    `check_texts(texts, model)` may refuse too-long prompts before any model loads;
    `should_stop()`, asked after each chunk, ends the run early (what is finished is kept).
    """
    plan = plan_experiment(experiment, what)
    where = parse_shard(shard) if isinstance(shard, str) else shard
    folder = Path(run_dir) if run_dir is not None else run_folder(out_dir, plan.name, where)
    if check_texts is not None:
        check_texts(step_texts(plan), plan.model)  # before the model loads and any step runs
    check_writable(folder)
    with folder_lock(folder, "run"):  # fail now if another run holds the folder (run_plan holds it while running)
        pass
    session = open_session(plan.model)
    total = len([it for c in plan.chunks_for(where) for it in c.items])
    seen = {"done": 0}
    with progress(plan.name, total) if progress else nullcontext(None) as advance:

        def on_progress(done: int, _total: int, _step: str) -> None:
            if advance is not None:
                advance(done - seen["done"])
            seen["done"] = done

        result = run_plan(
            plan,
            folder,
            session,
            open_session,
            shard=where,
            resume=resume,
            source=source,
            on_progress=on_progress,
            should_stop=should_stop,
        )
    if not blur:
        finalise(result.folder, plan, blur=False)
    return result
