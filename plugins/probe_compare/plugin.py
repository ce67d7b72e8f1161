"""Entry point of the built-in `compare` plugin: `probe compare RUN...` and `probe.compare(runs)`.
Only typer and the stdlib at import time (`probe --help` must stay fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from probe.plugin import hookimpl

PROBE_API = 2


@hookimpl
def register_python_api(register) -> None:
    from probe_compare.api import compare

    register("compare", compare, "runs of one experiment on several models, side by side with tested differences")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("compare", rich_help_panel="Experiments and audits")
    def compare_command(
        ctx: typer.Context,
        runs: Annotated[
            list[Path],
            typer.Argument(
                help="Run folders of one experiment, one per model (the first is the baseline).", show_default=False
            ),
        ],
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Folder for compare.html, compare.json and tables/ (default: OUT/compare/EXPERIMENT).",
                show_default=False,
            ),
        ] = None,
        no_blur: Annotated[bool, typer.Option("--no-blur", help="Show images flagged NSFW unblurred.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    ) -> None:
        """Compare runs of one experiment made with different models: per step each model's shares with
        Wilson 95% intervals and the difference from the first with Newcombe's 95% interval (≠ where it
        excludes 0), in one self-contained HTML page and tables."""
        from probe.plugin import console, inside, options, safe_name
        from probe_compare.api import compare

        comparison = compare(runs)
        folder = output or inside(options(ctx).out_dir, f"compare/{safe_name(comparison.experiment)}")
        page = comparison.write(folder, blur=not no_blur)
        if as_json:
            console.print_json({**comparison.as_dict(), "page": str(page)})
            return
        marked = 0
        for step in comparison.steps:
            if step.measured is not None:
                table = step.table(comparison.models)
                console.print_table(table.columns, table.rows, title=table.title)
                marked += sum(r.differs for r in step.measured.rows)
        console.note(f"{marked} difference(s) whose 95% interval excludes 0 (marked ≠); wrote {page}")
        typer.echo(str(page))
