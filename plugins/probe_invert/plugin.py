"""Entry point of the built-in `invert` plugin: `probe invert` (and `probe invert-validate`).

Thin CLI: parses options, calls the library (`probe_invert.render.invert_items`), writes files and
prints. Only typer and the standard library are imported at module level, so `probe --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from probe.plugin import hookimpl

PROBE_API = 1
KNOB_HELP = "Overrides the preset."


def _parse_priors(items: list[str]) -> dict[str, float]:
    from probe.plugin import UsageError

    out = {}
    for item in items:
        name, sep, weight = item.partition("=")
        try:
            out[name.strip()] = float(weight)
        except ValueError:
            raise UsageError(f"bad --prior {item!r}", hint="use NAME=WEIGHT, e.g. --prior tv=0.005") from None
        if not sep or not name.strip():
            raise UsageError(f"bad --prior {item!r}", hint="use NAME=WEIGHT, e.g. --prior tv=0.005")
    return out


def _settings_from_flags(preset: str, flags: dict[str, Any]):
    from probe.plugin import UsageError
    from probe_invert.settings import load_preset

    priors = flags.pop("prior", None)
    if priors:
        flags["priors"] = _parse_priors(priors)
    for name in ("resize_at", "transforms"):
        text = flags.get(name)
        if text is not None:
            items = [t.strip() for t in text.split(",") if t.strip()]
            if name == "resize_at":
                try:
                    items = [int(t) for t in items]
                except ValueError:
                    raise UsageError(
                        f"bad --resize-at {text!r}", hint="give steps as integers, e.g. 900,1800"
                    ) from None
            flags[name] = items
    return load_preset(preset, **flags)


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

    register("invert", invert, "CLIP inversion: images the model matches to prompts")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("invert")
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
        steps: Annotated[int | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        lr: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        lr_schedule: Annotated[str | None, typer.Option(help="constant | cosine.", show_default=False)] = None,
        param: Annotated[
            str | None, typer.Option(help="pixel | fft (or a plugin's parameterisation).", show_default=False)
        ] = None,
        size: Annotated[
            int | None, typer.Option(help="Starting resolution (on any model).", show_default=False)
        ] = None,
        size_fraction: Annotated[
            float | None,
            typer.Option(
                help="Starting resolution as a fraction of the model input (0 = use --size).", show_default=False
            ),
        ] = None,
        resize_at: Annotated[
            str | None,
            typer.Option(help="Steps at which the resolution doubles, e.g. 900,1800.", show_default=False),
        ] = None,
        max_size: Annotated[
            int | None, typer.Option(help="Resolution cap (0 = model input).", show_default=False)
        ] = None,
        pixel_init: Annotated[
            float | None,
            typer.Option(help="Pixel param: initial noise amplitude around grey (1 = uniform).", show_default=False),
        ] = None,
        fft_decay: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        fft_init_std: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        decorrelate: Annotated[
            bool | None,
            typer.Option("--decorrelate/--no-decorrelate", help="fft: decorrelated colour.", show_default=False),
        ] = None,
        copies: Annotated[
            int | None, typer.Option(help="Augmented copies per image per step.", show_default=False)
        ] = None,
        transforms: Annotated[
            str | None,
            typer.Option(
                help=(
                    "Ordered list from jitter, affine, resize, colour_shift, colour_jitter, noise "
                    "(and plugins' transforms)."
                ),
                show_default=False,
            ),
        ] = None,
        affine_p: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        affine_degrees: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        affine_translate: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        affine_scale_min: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        affine_scale_max: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        affine_padding: Annotated[
            str | None, typer.Option(help="border | zeros | reflection.", show_default=False)
        ] = None,
        colour_shift_mean: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        colour_shift_std: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        jitter_pixels: Annotated[int | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        noise_std: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        colour_jitter_brightness: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        colour_jitter_contrast: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        colour_jitter_saturation: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        loss: Annotated[str | None, typer.Option(help="distance | cosine.", show_default=False)] = None,
        tv_weight: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        l1_weight: Annotated[float | None, typer.Option(help=KNOB_HELP, show_default=False)] = None,
        prior: Annotated[
            list[str] | None,
            typer.Option(
                "--prior",
                help="NAME=WEIGHT: add a registered prior (e.g. a plugin's); repeat for several.",
                show_default=False,
            ),
        ] = None,
        l1_center: Annotated[
            float | None,
            typer.Option(help="Value L1 pulls pixels towards (0 = paper, 0.5 = grey).", show_default=False),
        ] = None,
        grad_clip: Annotated[
            float | None, typer.Option(help="Per-image gradient norm clip (0 = off).", show_default=False)
        ] = None,
        clamp: Annotated[bool | None, typer.Option("--clamp/--no-clamp", help=KNOB_HELP, show_default=False)] = None,
        batch_size: Annotated[
            int | None, typer.Option(help="Images optimised together per chunk.", show_default=False)
        ] = None,
        snapshot_every: Annotated[
            int | None, typer.Option(help="Save an image every K steps.", show_default=False)
        ] = None,
        ensemble: Annotated[
            list[str] | None,
            typer.Option(
                "--ensemble",
                help="Also match this model (repeat): its text term is averaged with the main model's.",
                show_default=False,
            ),
        ] = None,
        gif: Annotated[bool, typer.Option("--gif", help="Write an animated GIF of the snapshots per image.")] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Redo images already finished in the output folder.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    ) -> None:
        """Invert CLIP: optimise images, from noise, that the model matches to each prompt."""
        knobs = {
            k: v
            for k, v in locals().items()
            if k not in {"ctx", "prompts", "prompts_file", "seeds", "preset", "ensemble", "gif", "force", "as_json"}
        }
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
        if gif and not (knobs.get("snapshot_every") or 0):
            knobs["snapshot_every"] = max(1, (knobs.get("steps") or _settings_from_flags(preset, {}).steps) // 20)
        settings = _settings_from_flags(preset, knobs)  # a bad preset or knob fails at once
        check_prompt_lengths(ctx, parts)  # too long for the model's context: fail now too, not after it loads
        from probe_invert.runner import run_inversions

        code = run_inversions(
            ctx, all_prompts, seed_list, settings, gif=gif, force=force, as_json=as_json, ensemble=list(ensemble or [])
        )
        if code:
            raise typer.Exit(code)

    @app.command("invert-validate")
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
        folder = state.out_dir / "invert-validate"
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
