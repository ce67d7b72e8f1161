"""Entry point of the built-in `invert` plugin: `probe invert` (and `probe invert-validate`).

Thin CLI: parses options, calls the library (`probe_invert.render.invert_items`), writes files and
prints. Only typer and the standard library are imported at module level, so `probe --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from probe.plugin import UsageError, hookimpl

PROBE_API = 1


def _preset_default(knob: str) -> str:
    """How --help shows a knob's default: the default preset's value (a preset may change it)."""
    from probe_invert.defaults import FLAG_DEFAULTS

    return f"[default: {FLAG_DEFAULTS[knob]} in the default preset]"


def _settings_from_flags(preset: str, flags: dict[str, Any], assignments: list[str] | None = None):
    from probe_invert.settings import SettingsError, load_preset

    try:
        settings = load_preset(preset, **flags)
    except SettingsError as exc:  # a flag's bad value: name the flag as the user typed it
        key = str(exc.loc[0]) if exc.loc else ""
        if flags.get(key) is None:
            raise
        raise UsageError(f"--{key.replace('_', '-')}: {exc.message}", hint=exc.hint) from None
    return settings.with_set(assignments) if assignments else settings


MAX_IMAGES_UNASKED = 1000
"""More images than this (prompts x seeds) in one `probe invert` need --yes: a prompt file of
100,000 lines would otherwise start days of work without a word."""


def _refuse_unasked_size(prompts: int, seeds: int, steps: int) -> None:
    """A UsageError stating the work (images and optimisation steps) when it is over the limit."""
    images = prompts * seeds
    if images <= MAX_IMAGES_UNASKED:
        return
    from probe.plugin import UsageError

    raise UsageError(
        f"{images:,} images ({prompts:,} prompts x {seeds} seeds) at {steps} steps each: {images * steps:,} "
        f"image-steps, over the {MAX_IMAGES_UNASKED:,} images a command starts unasked",
        hint="pass --yes to start anyway, or put them in an experiment file and use `probe run` "
        "(resumable, can be split into shards)",
    )


@hookimpl
def register_invert_transforms(register) -> None:
    from probe_invert.parts import TRANSFORMS, register_all

    register_all(register, TRANSFORMS)


@hookimpl
def register_invert_params(register) -> None:
    from probe_invert.parts import PARAMS, register_all

    register_all(register, PARAMS)


@hookimpl
def register_invert_priors(register) -> None:
    from probe_invert.parts import PRIORS, register_all

    register_all(register, PRIORS)


@hookimpl
def register_experiment_steps(register) -> None:
    from probe_invert.invert_step import INVERT_STEP

    register(INVERT_STEP)


@hookimpl
def register_python_api(register) -> None:
    from probe_invert.api import invert
    from probe_invert.folder import invert_into_folder

    register("invert", invert, "CLIP inversion: images the model matches to prompts")
    register(
        "invert_into_folder",
        invert_into_folder,
        "invert into an output folder as `probe invert` does (PNG + sidecar per image, contact sheet)",
    )


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("invert", rich_help_panel="Probes")
    def invert_command(
        ctx: typer.Context,
        prompts: Annotated[
            list[str] | None,
            typer.Argument(
                help="Prompts; 'a panda | a mad scientist:0.5 | blurry:-0.3' blends with weights.", show_default=False
            ),
        ] = None,
        prompts_file: Annotated[
            Path | None,
            typer.Option("--prompts", help="File with one prompt per line ('#' comments).", show_default=False),
        ] = None,
        seeds: Annotated[
            str | None,
            typer.Option(help="Seeds, e.g. 0-7 or 0,3,5-9 (default: --seed of probe, else 0).", show_default=False),
        ] = None,
        preset: Annotated[str, typer.Option(help="Preset name (default, paper) or a YAML file.")] = "default",
        steps: Annotated[
            int | None, typer.Option(help=f"Optimisation steps {_preset_default('steps')}.", show_default=False)
        ] = None,
        size: Annotated[
            int | None,
            typer.Option(
                help="Starting resolution on any model [default: an eighth of the model input].",
                show_default=False,
            ),
        ] = None,
        copies: Annotated[
            int | None,
            typer.Option(help=f"Augmented copies per image per step {_preset_default('copies')}.", show_default=False),
        ] = None,
        batch_size: Annotated[
            int | None,
            typer.Option(
                help=f"Images optimised together per chunk {_preset_default('batch_size')}.", show_default=False
            ),
        ] = None,
        assignments: Annotated[
            list[str] | None,
            typer.Option(
                "--set",
                metavar="KEY=VALUE",
                help=(
                    "KEY=VALUE for any other knob (repeat): lr=0.05, param=fft, priors.tv=0.1, "
                    "transforms.affine.degrees=20. Every key: docs/probes/invert.md."
                ),
                show_default=False,
            ),
        ] = None,
        ensemble: Annotated[
            list[str] | None,
            typer.Option(
                "--ensemble",
                metavar="SPEC",
                help="Also match this model (repeat): its text term is averaged with the main model's.",
                show_default=False,
            ),
        ] = None,
        gif: Annotated[bool, typer.Option("--gif", help="Write an animated GIF of the snapshots per image.")] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Redo images already finished in the output folder.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
        yes: Annotated[
            bool, typer.Option("--yes", help=f"Start even when over {MAX_IMAGES_UNASKED:,} images (prompts x seeds).")
        ] = False,
    ) -> None:
        """Invert CLIP: optimise images, from noise, that the model matches to each prompt."""
        knobs = {"steps": steps, "size": size, "copies": copies, "batch_size": batch_size}
        from probe.plugin import UsageError, check_prompt_lengths, options
        from probe_invert.prompts import parse_prompt, parse_seeds, read_prompts_file

        state = options(ctx)
        all_prompts = list(prompts or []) + (read_prompts_file(prompts_file) if prompts_file else [])
        if not all_prompts:
            raise UsageError("no prompts given", hint="pass prompts as arguments or --prompts FILE")
        parts = [
            text for p in all_prompts for text, _ in parse_prompt(p).parts
        ]  # bad syntax fails before the model loads
        seed_list = parse_seeds(seeds) if seeds is not None else [int(state.seed or 0)]
        settings = _settings_from_flags(preset, knobs, assignments)  # a bad preset or knob fails at once
        if gif and not settings.snapshot_every:
            settings = settings.with_overrides(snapshot_every=max(1, settings.steps // 20))
        if not yes:
            _refuse_unasked_size(len(all_prompts), len(seed_list), settings.steps)
        check_prompt_lengths(ctx, parts)  # too long for the model's context: fail now too, not after it loads
        from probe_invert.runner import run_inversions

        code = run_inversions(
            ctx, all_prompts, seed_list, settings, gif=gif, force=force, as_json=as_json, ensemble=list(ensemble or [])
        )
        if code:
            raise typer.Exit(code)

    @app.command("invert-validate", rich_help_panel="Experiments and audits")
    def validate_command(
        ctx: typer.Context,
        seeds: Annotated[str, typer.Option(help="Seeds per prompt.")] = "0-1",
        preset: Annotated[str, typer.Option(help="Preset name or YAML file.")] = "default",
        steps: Annotated[int | None, typer.Option(help="Override the preset's steps.", show_default=False)] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    ) -> None:
        """Invert the 48 colour x shape prompts of the shapes world; report colour match and shape-checker agreement."""
        from probe.plugin import console, current_session, options
        from probe_invert.outputs import write_validation_sheet
        from probe_invert.prompts import parse_seeds
        from probe_invert.validation import validate

        state = options(ctx)
        settings = _settings_from_flags(preset, {"steps": steps})
        with console.progress("validating", total=None) as advance:
            result = validate(current_session(ctx), settings, parse_seeds(seeds), on_step=lambda s, c: advance(0))
        from probe.plugin import safe_name

        # one folder per (preset, seeds): a run with other seeds or another preset keeps the earlier results
        folder = state.out_dir / "invert-validate" / f"{safe_name(Path(settings.preset).stem)}-seeds-{safe_name(seeds)}"
        sheet = write_validation_sheet(folder / "contact-sheet.png", result)
        from probe.plugin import write_json

        write_json(folder / "validation.json", result.as_dict())
        if as_json:
            console.print_json(result.as_dict())
            return
        console.print_table(
            f"invert validation — {state.model}, preset {settings.preset}",
            ["measure", "value", "goal"],
            [
                ["colour match", f"{result.colour_match:.0%}", ">= 80%"],
                [
                    "shape checker agrees",
                    f"{result.shape_match:.0%}" if result.shape_match is not None else "n/a",
                    ">= 50%",
                ],
                ["images", str(result.n_images), ""],
                ["median cosine", f"{result.median_cosine:.3f}", ""],
            ],
        )
        console.note(f"contact sheet: {sheet}")
