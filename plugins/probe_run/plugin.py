"""Entry point of the built-in `run` plugin, the experiment engine: run, merge and report (thin CLI layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from probe.plugin import hookimpl, step_kinds

PROBE_API = 2

AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Engine = Annotated[
    str,
    typer.Option(
        "--engine", help="Where chunks run: local (this process) or ray (Ray actors, one model each; extra: ray)."
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Ray actors (default: one per GPU; on CPU 1, the cores divided between them).",
        show_default=False,
    ),
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address", help="Join a Ray cluster: auto or ray://HOST:PORT (default: start Ray here).", show_default=False
    ),
]


def engine_options(ctx: typer.Context, engine: str, workers: int | None, address: str | None) -> dict:
    """The engine options of a command: the workers open sessions with the driver's global options."""
    from probe.plugin import options

    return {"engine": engine, "workers": workers, "address": address, "session": options(ctx).open_options()}


def _print_run(result, as_json: bool) -> None:
    from probe.plugin import console

    summary = result.summary()
    if as_json:
        console.print_json({**result.as_dict(), "summary": summary})
        return
    for step in summary["steps"]:
        t = step["table"]
        console.print_table(t["columns"], t["rows"], title=t["title"])
    for line in result.notes():
        console.note(line)


def _print_comparison(result, as_json: bool) -> None:
    """Each model's tables in turn (titles name the model); --json: keyed by model spec."""
    from probe.plugin import console

    summaries = result.summary()
    if as_json:
        data = result.as_dict()
        for spec, summary in summaries.items():
            data["models"][spec]["summary"] = summary
        console.print_json(data)
        return
    for spec, summary in summaries.items():
        for step in summary["steps"]:
            t = step["table"]
            console.print_table(t["columns"], t["rows"], title=f"{t['title']} — {spec}")
    for line in result.notes():
        console.note(line)


class _RunCommand(TyperCommand):
    """`probe run --help` ends with every plugin's step kinds (looked up only when help is shown)."""

    def format_epilog(self, ctx: Any, formatter: Any) -> None:
        kinds = step_kinds()
        self.epilog = "Step kinds: " + "; ".join(
            f"{name} ({ext.plugin}): {ext.about}" if ext.about else f"{name} ({ext.plugin})"
            for name, ext in kinds.items()
        )
        super().format_epilog(ctx, formatter)


@hookimpl
def register_python_api(register) -> None:
    from probe_run.api import run_comparison, run_experiment
    from probe_run.charts import chart_svg
    from probe_run.experiment import steps_digest
    from probe_run.report import render_report, report_style
    from probe_run.runner import merge_runs

    register("run_experiment", run_experiment, "run an experiment (file or mapping) into a run folder")
    register("steps_digest", steps_digest, "an experiment's digest without its model(s): equal across models")
    register("run_comparison", run_comparison, "run one experiment on several models, one loaded at a time")
    register("merge_runs", merge_runs, "combine shard run folders into one, equal to an unsharded run")
    register("render_report", render_report, "the self-contained HTML report of a run folder")
    register("chart_svg", chart_svg, "a bar chart with Wilson whiskers as inline SVG, from plain data (as the report)")
    register("report_style", report_style, "the report's CSS, for pages that look like the report")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("run", cls=_RunCommand, rich_help_panel="Experiments and audits")
    def run(
        ctx: typer.Context,
        experiment: Annotated[
            Path,
            typer.Argument(
                help="Experiment YAML file (steps: invert, label, bias, nsfw, neighbours, shuffle).", show_default=False
            ),
        ],
        shard: Annotated[
            str | None,
            typer.Option(
                "--shard", help="Run only slice I of N (0 <= I < N), e.g. $SLURM_ARRAY_TASK_ID/4.", show_default=False
            ),
        ] = None,
        resume: Annotated[
            bool, typer.Option("--resume", help="Continue the run in the folder, skipping finished items.")
        ] = False,
        run_dir: Annotated[
            Path | None,
            typer.Option(
                "--run-dir",
                help=(
                    "Run folder (default: OUT/runs/NAME[.shard-I-of-N]; with several models, their comparison folder)."
                ),
                show_default=False,
            ),
        ] = None,
        engine: Engine = "local",
        workers: Workers = None,
        address: Address = None,
        as_json: AsJson = False,
    ) -> None:
        """Run an experiment's steps with one model load per process (or per Ray worker), into one run folder.

        With several models (models: in the file, or -m given twice or more) each runs in turn, one
        loaded at a time, into OUT/runs/NAME/<model>/; -m then picks models of the file's list.
        """
        from probe.plugin import (
            check_model_files,
            check_prompt_lengths,
            console,
            current_session,
            options,
            release_session,
            session_for,
            stop_on_signals,
        )
        from probe_run.api import comparison_models, plan_experiment, run_comparison, run_experiment

        given = options(ctx).models
        common: dict[str, Any] = {
            "run_dir": run_dir,
            "out_dir": options(ctx).out_dir,
            "shard": shard,
            "resume": resume,
            "source": str(experiment),
            "progress": console.progress,
            "check_texts": lambda texts, model: check_prompt_lengths(ctx, texts, model=model),
            "check_model": lambda spec: check_model_files(ctx, spec),
            "engine": engine_options(ctx, engine, workers, address),
            "note": console.note,
        }
        should_stop, restore = stop_on_signals(
            "Stopping after this chunk and keeping what is finished (Ctrl-C again to abort)…"
        )
        try:
            if comparison_models(plan_experiment(experiment), given) is not None:
                compared = run_comparison(
                    experiment,
                    lambda spec: session_for(ctx, spec) if spec else current_session(ctx),
                    models=given,
                    release_session=lambda spec: release_session(ctx, spec),
                    should_stop=should_stop,
                    **common,
                )
                _print_comparison(compared, as_json)
                raise typer.Exit(compared.exit_code)
            result = run_experiment(
                experiment,
                lambda spec: session_for(ctx, spec) if spec else current_session(ctx),
                should_stop=should_stop,
                **common,
            )
        finally:
            restore()
        _print_run(result, as_json)
        raise typer.Exit(result.exit_code)

    @app.command("merge", rich_help_panel="Experiments and audits")
    def merge(
        folders: Annotated[list[Path], typer.Argument(help="Shard run folders of one experiment.", show_default=False)],
        out: Annotated[
            Path, typer.Option("--out", "-o", help="Folder for the merged run (new or empty).", show_default=False)
        ],
        as_json: AsJson = False,
    ) -> None:
        """Combine shard folders into one run folder, equal to an unsharded run."""
        from probe_run.runner import merge_runs

        result = merge_runs(list(folders), out)
        _print_run(result, as_json)
        raise typer.Exit(result.exit_code)

    @app.command("report", rich_help_panel="Experiments and audits")
    def report(
        run_folder: Annotated[
            Path, typer.Argument(help="A run folder (from probe run, bias, nsfw or merge).", show_default=False)
        ],
        output: Annotated[
            Path | None,
            typer.Option(
                "--output", "-o", help="HTML file to write (default RUN_FOLDER/report.html).", show_default=False
            ),
        ] = None,
        no_blur: Annotated[bool, typer.Option("--no-blur", help="Show images flagged NSFW unblurred.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
    ) -> None:
        """One self-contained HTML page (images embedded) with the run's tables and image grids."""
        from probe.files.checks import check_new_file
        from probe.plugin import atomic_write_text, console
        from probe_run.report import render_report

        check_new_file(output, force)  # a file the user named; RUN_FOLDER/report.html is the tool's own
        path = output or Path(run_folder) / "report.html"
        page = render_report(Path(run_folder), blur=not no_blur)
        atomic_write_text(path, page)
        damaged = page.count("<figure class='missing'>")
        if damaged:
            console.note(
                f"{damaged} image(s) of {run_folder} are missing or damaged (noted in the report): "
                "rerun the run with --resume to recompute them"
            )
        console.note(f"wrote {path}")
        typer.echo(str(path))
