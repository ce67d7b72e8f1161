"""Entry point of the built-in `run` plugin, the experiment engine: run, merge and report (thin CLI layer)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from probe.plugin import hookimpl, step_kinds

PROBE_API = 2

AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


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
    from probe_run.api import run_experiment
    from probe_run.report import render_report
    from probe_run.runner import merge_runs

    register("run_experiment", run_experiment, "run an experiment (file or mapping) into a run folder")
    register("merge_runs", merge_runs, "combine shard run folders into one, equal to an unsharded run")
    register("render_report", render_report, "the self-contained HTML report of a run folder")


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
            typer.Option("--run-dir", help="Run folder (default: OUT/runs/NAME[.shard-I-of-N]).", show_default=False),
        ] = None,
        as_json: AsJson = False,
    ) -> None:
        """Run an experiment's steps in one process with one model load, into one run folder."""
        from probe.plugin import check_prompt_lengths, console, current_session, options, session_for, stop_on_signals
        from probe_run.api import run_experiment

        should_stop, restore = stop_on_signals(
            "Stopping after this chunk and keeping what is finished (Ctrl-C again to abort)…"
        )
        try:
            result = run_experiment(
                experiment,
                lambda spec: session_for(ctx, spec) if spec else current_session(ctx),
                run_dir=run_dir,
                out_dir=options(ctx).out_dir,
                shard=shard,
                resume=resume,
                source=str(experiment),
                progress=console.progress,
                check_texts=lambda texts, model: check_prompt_lengths(ctx, texts, model=model),
                should_stop=should_stop,
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
    ) -> None:
        """One self-contained HTML page (images embedded) with the run's tables and image grids."""
        from probe.plugin import atomic_write_text, console
        from probe_run.report import render_report

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
