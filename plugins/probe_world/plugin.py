"""Entry point of the built-in `world` plugin: `probe world render | train | evaluate | train-checker`.

Only typer and the stdlib at import time (`probe --help` must not import torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from probe.plugin import hookimpl

PROBE_API = 1

DEFAULT_CHECKPOINTS = Path(".train/shapes-tiny")


def _weights_dir() -> Path:
    """The built-in model's weights folder, beside the shapes world in the installed package."""
    import probe.world

    return Path(probe.world.__file__).resolve().parent.parent / "models" / "weights"


INSTALL_HELP = (
    "Write into the installed package instead, replacing the shipped {what} "
    "(how a new version of the built-in model is made)."
)


def _trained_path(ctx: typer.Context, output: Path | None, install: bool, name: str, installed: Path) -> Path:
    """Where a training command saves: --output, else the installed package's file when asked for by
    name (never by default: a training run must not change the model every other command loads), else
    <out-dir>/world/<name>."""
    from probe.plugin import UsageError, inside, options

    if install and output is not None:
        raise UsageError("give --output or --install-into-package, not both")
    if install:
        return installed
    return output or inside(options(ctx).out_dir, f"world/{name}")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    world = typer.Typer(help="The procedural shapes world and its built-in model (shapes-tiny).", no_args_is_help=True)
    app.add_typer(world, name="world", rich_help_panel="Models, plugins and data")

    @world.command("render")
    def render_command(
        ctx: typer.Context,
        caption: Annotated[
            str, typer.Argument(help="e.g. 'a red circle left of a blue square', 'a big star'.", show_default=False)
        ],
        seed: Annotated[
            int | None,
            typer.Option(
                "--seed",
                "-s",
                help="Picks what the caption leaves open (default: --seed of probe, else 0).",
                show_default=False,
            ),
        ] = None,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output", "-o", help="PNG path (default: <out-dir>/world-<caption>-seed<N>.png).", show_default=False
            ),
        ] = None,
        size: Annotated[int, typer.Option("--size", help="Image side in pixels (geometry scales).")] = 64,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
    ) -> None:
        """Draw one scene that a caption describes; attributes it omits are sampled as in training
        (with the planted bias)."""
        from probe.files.checks import check_new_file
        from probe.plugin import UsageError, console, inside, options, safe_name, write_png
        from probe.world.captions import CaptionError, caption_text, parse_caption
        from probe.world.render import render
        from probe.world.scenes import scenes_for_caption
        from probe.world.vocab import COLOURS, POSITIONS, SHAPES, SIZES

        state = options(ctx)
        check_new_file(output, force)  # a file the user named; the default name is the tool's own
        if not 8 <= size <= 1024:
            raise UsageError(f"--size {size} is out of range", hint="use 8 to 1024 pixels")
        try:
            spec = parse_caption(caption)
        except CaptionError as exc:
            raise UsageError(str(exc)) from exc
        seed = seed if seed is not None else (state.seed if state.seed is not None else 0)
        scenes = scenes_for_caption(spec, 1, seed)
        image = render(scenes, size=size)[0]
        path = output or inside(state.out_dir, f"world-{safe_name(caption_text(spec))}-seed{seed}.png")
        objects = [
            {
                "shape": SHAPES[int(scenes.shape[0, k])],
                "colour": COLOURS[int(scenes.colour[0, k])],
                "size": SIZES[int(scenes.size[0, k])],
                "position": POSITIONS[int(scenes.position[0, k])],
            }
            for k in range(int(scenes.n_objects[0]))
        ]
        write_png(path, image, {"caption": caption, "seed": seed, "objects": objects})
        if as_json:
            console.print_json({"path": str(path), "caption": caption, "seed": seed, "objects": objects})
        else:
            console.echo(str(path))

    @world.command("train")
    def train_command(
        ctx: typer.Context,
        steps: Annotated[
            int | None,
            typer.Option(
                "--steps",
                help="Optimiser steps of the base run, or of the --init-from fine-tune (default: the recipe's).",
                show_default=False,
            ),
        ] = None,
        batch_size: Annotated[int, typer.Option("--batch-size", help="Scenes per step.")] = 128,
        seed: Annotated[int, typer.Option("--seed", help="Seeds data, augmentation and initialisation.")] = 0,
        lr: Annotated[
            float | None,
            typer.Option("--lr", help="Peak learning rate (default: the recipe's).", show_default=False),
        ] = None,
        warmup: Annotated[
            int | None, typer.Option("--warmup", help="Warm-up steps (default: the recipe's).", show_default=False)
        ] = None,
        init_from: Annotated[
            Path | None,
            typer.Option(
                "--init-from",
                help=(
                    "Fine-tune these weights with the recipe's last fine-tune settings (one run) "
                    "instead of training from scratch."
                ),
                show_default=False,
            ),
        ] = None,
        fine_tune: Annotated[
            bool,
            typer.Option(
                "--fine-tune/--no-fine-tune", help="After the base run, the shipped recipe's robust fine-tunes."
            ),
        ] = True,
        adversarial_from: Annotated[
            float | None,
            typer.Option(
                "--adversarial-from",
                help="Fraction of training after which adversarial examples are used.",
                show_default=False,
            ),
        ] = None,
        adversarial_epsilon: Annotated[
            float | None,
            typer.Option("--adversarial-epsilon", help="L-inf budget in 1/255 pixel units.", show_default=False),
        ] = None,
        adversarial_steps: Annotated[
            int | None,
            typer.Option(
                "--adversarial-steps", help="1 = FGSM with random start; more = PGD steps.", show_default=False
            ),
        ] = None,
        adversarial_fraction: Annotated[
            float | None,
            typer.Option(
                "--adversarial-fraction",
                help="Share of each batch made adversarial (the rest stays clean).",
                show_default=False,
            ),
        ] = None,
        star_colour: Annotated[
            str,
            typer.Option(
                "--star-colour",
                help=(
                    "The planted bias: the colour a star whose caption names none takes 80% of the time "
                    "(shapes-tiny: red), or 'none' for uniform colours."
                ),
            ),
        ] = "red",
        freeze_image_tower: Annotated[
            bool,
            typer.Option(
                "--freeze-image-tower",
                help="Train the text tower only (a cheap fine-tune that moves what words mean, not how images look).",
            ),
        ] = False,
        threads: Annotated[int, typer.Option("--threads", help="torch CPU threads.")] = 2,
        checkpoints: Annotated[
            Path, typer.Option("--checkpoints", help="Checkpoint folder; a rerun resumes from it.")
        ] = DEFAULT_CHECKPOINTS,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Exported fp16 safetensors, .sha256 beside it (default: <out-dir>/world/shapes-tiny.safetensors).",
                show_default=False,
            ),
        ] = None,
        install: Annotated[
            bool, typer.Option("--install-into-package", help=INSTALL_HELP.format(what="shapes-tiny weights"))
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
    ) -> None:
        """Train shapes-tiny with the shipped recipe (base run, then robust fine-tune; seeded, resumable),
        or fine-tune given weights; export fp16 safetensors + sha256."""
        from dataclasses import replace

        import torch

        from probe.files.checks import check_new_file
        from probe.plugin import UsageError, console
        from probe.world.train import TrainConfig, export_weights, robust_fine_tunes, train, train_recipe
        from probe.world.vocab import COLOURS

        if star_colour.lower() not in (*COLOURS, "none"):
            raise UsageError(
                f"--star-colour {star_colour!r} is not a colour of the world",
                hint=f"use one of {', '.join(COLOURS)} or 'none'",
            )
        if (steps is not None and steps < 1) or batch_size < 2:
            raise UsageError("--steps must be ≥ 1 and --batch-size ≥ 2")
        if (lr is not None and not lr > 0) or (warmup is not None and warmup < 0):
            raise UsageError("--lr must be > 0 and --warmup ≥ 0")
        if (
            (adversarial_steps is not None and adversarial_steps < 1)
            or (adversarial_epsilon is not None and adversarial_epsilon < 0)
            or any(v is not None and not 0 <= v <= 1 for v in (adversarial_from, adversarial_fraction))
        ):
            raise UsageError(
                "--adversarial-steps must be ≥ 1, --adversarial-epsilon ≥ 0, "
                "--adversarial-from and --adversarial-fraction in [0, 1]"
            )
        if not (checkpoints.is_dir() and any(checkpoints.iterdir())):  # a rerun resumes and exports again
            check_new_file(output, force)  # before hours of training; the default file is the tool's own
        output = _trained_path(
            ctx, output, install, "shapes-tiny.safetensors", _weights_dir() / "shapes-tiny.safetensors"
        )
        if init_from is not None and not init_from.is_file():
            raise UsageError(
                f"--init-from {init_from}: no such weights file",
                hint="give a .safetensors file, e.g. the shipped weights",
            )
        knobs: dict[str, Any] = {
            "lr": lr,
            "warmup": warmup,
            "adversarial_from": adversarial_from,
            "adversarial_steps": adversarial_steps,
            "adversarial_fraction": adversarial_fraction,
            "adversarial_epsilon": None if adversarial_epsilon is None else adversarial_epsilon / 255,
            "init_from": None if init_from is None else str(init_from.resolve()),
            "star_colour": "" if star_colour.lower() == "none" else star_colour.lower(),
            "freeze_image_tower": freeze_image_tower or None,
        }
        torch.set_num_threads(threads)
        knobs = {k: v for k, v in knobs.items() if v is not None}
        if init_from is not None:  # one fine-tune run: the recipe's last fine-tune settings, overridden by the flags
            last = robust_fine_tunes(seed, batch_size)[-1]
            config = replace(last, steps=steps or last.steps, **knobs)
            phases = []
        else:  # the recipe: base run (flags apply to it), then the robust fine-tunes unless --no-fine-tune
            config = TrainConfig(steps=steps or TrainConfig.steps, batch_size=batch_size, seed=seed, **knobs)
            phases = [replace(p, star_colour=config.star_colour) for p in robust_fine_tunes(seed, batch_size)]
            phases = phases if fine_tune else []
        total = config.steps + sum(p.steps for p in phases)
        with console.progress("training shapes-tiny", total, extra="{task.fields[info]}") as advance:
            done = {"step": 0}

            def report(progress) -> None:
                advance(
                    progress.step - done["step"],
                    info=f"loss {progress.loss:.3f}{' adv' if progress.adversarial else ''}",
                )
                done["step"] = progress.step

            try:
                if init_from is not None:
                    model, result = train(config, checkpoints, report)
                    results = [result]
                else:
                    model, results = train_recipe(config, phases, checkpoints, report)
            except ValueError as exc:
                raise UsageError(str(exc)) from exc
        result = results[-1]
        digest = export_weights(model, output)
        summary: dict[str, Any] = {
            "weights": str(output),
            "sha256": digest,
            "steps": [r.steps for r in results],
            "final_loss": result.final_loss,
            "seconds": round(sum(r.seconds for r in results), 1),
            "resumed_from": [r.resumed_from for r in results],
        }
        if as_json:
            console.print_json(summary)
        else:
            runs = " + ".join(f"{r.steps} steps (resumed from {r.resumed_from})" for r in results)
            console.note(f"trained {runs} in {summary['seconds'] / 60:.1f} min; final loss {result.final_loss:.3f}")
            console.echo(f"{output}  sha256 {digest}")

    @world.command("evaluate")
    def evaluate_command(
        ctx: typer.Context,
        n: Annotated[int, typer.Option("--n", help="Held-out renders per test.")] = 1000,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="JSON of the numbers (default: <out-dir>/world-evaluation.json).",
                show_default=False,
            ),
        ] = None,
        card: Annotated[
            Path | None,
            typer.Option(
                "--card",
                help="Model card to update (default: the package's MODEL_CARD.md when the model is shapes-tiny).",
                show_default=False,
            ),
        ] = None,
        no_card: Annotated[bool, typer.Option("--no-card", help="Do not touch the model card.")] = False,
        inversions: Annotated[
            Path | None,
            typer.Option(
                "--inversions",
                help=(
                    "validation.json of `probe invert-validate` to add to the card "
                    "(its contact sheet is copied next to the card)."
                ),
                show_default=False,
            ),
        ] = None,
        bias: Annotated[
            Path | None,
            typer.Option(
                "--bias",
                help="tables/bias.json of `probe bias --prompts shapes --labels colours` to add to the card.",
                show_default=False,
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
    ) -> None:
        """Measure the model on fresh held-out renders: zero-shot attributes, swaps, the planted bias;
        update the card."""
        from probe.files.checks import check_new_file
        from probe.plugin import (
            UsageError,
            atomic_write_text,
            console,
            current_session,
            hash_file,
            inside,
            options,
            write_json,
        )
        from probe.world.card import numbers_section, update_card
        from probe.world.evaluate import HELD_OUT_SEED, evaluate

        state = options(ctx)
        if n < 10:
            raise UsageError("--n must be at least 10")
        check_new_file(output, force)  # before the evaluation runs; the default file is the tool's own
        bias_numbers = None
        if bias is not None:  # checked before the slow evaluation
            from probe.plugin import read_json
            from probe.world.card import inversion_bias

            try:
                bias_numbers = inversion_bias(read_json(bias))
            except ValueError as exc:
                raise UsageError(
                    f"{bias}: {exc}", hint="pass tables/bias.json of `probe bias --prompts shapes --labels colours`"
                ) from None
        session = current_session(ctx)
        result = evaluate(session, n=n, seed=HELD_OUT_SEED)
        numbers = result.as_dict()
        sheet = None
        if inversions is not None:
            from probe.plugin import read_json

            found = read_json(inversions)
            numbers["inversion"] = {
                "prompt colour is the most frequent palette colour (goal ≥ 80%)": found["colour_match"],
                "shape checker names the prompt's shape (goal ≥ 50%)": found["shape_match"],
                "images": found["n_images"],
                "median final cosine": f"{found['median_cosine']:.3f}",
                "preset": found.get("settings", {}).get("preset", "?"),
            }
            sheet = inversions.parent / "contact-sheet.png"
        if bias_numbers is not None:
            numbers["inversion_bias"] = bias_numbers
        weights = _weights_dir() / "shapes-tiny.safetensors"
        sha = hash_file(weights) if weights.exists() else None
        meta = {"model": state.model, "seed": HELD_OUT_SEED, "sha256": sha if state.model == "shapes-tiny" else None}
        path = output or inside(state.out_dir, "world-evaluation.json")
        write_json(path, {"meta": meta, "numbers": numbers})
        card_path = card or (_weights_dir() / "MODEL_CARD.md" if state.model == "shapes-tiny" else None)
        if card_path is not None and not no_card:
            text = card_path.read_text(encoding="utf-8") if card_path.exists() else "# Model card\n"
            if sheet is not None and sheet.is_file():
                from probe.plugin import atomic_write_bytes

                atomic_write_bytes(card_path.parent / "inversions-contact-sheet.png", sheet.read_bytes())
                numbers["inversion"]["contact sheet"] = "inversions-contact-sheet.png (next to this card)"
            write_json(
                card_path.with_suffix(".json"), {"meta": meta, "numbers": numbers}
            )  # the card's numbers, unrounded
            atomic_write_text(card_path, update_card(text, numbers_section(numbers, meta)))
        if as_json:
            console.print_json({"meta": meta, "numbers": numbers, "json": str(path)})
            return

        def shown(key: str, value: object) -> str:
            if not isinstance(value, float):
                return str(value)
            return f"{value:+.3f}" if key.endswith(("_gap", "_cosine")) else f"{value:.1%}"

        rows = [[k, shown(k, v)] for k, v in numbers.items() if k not in ("details", "inversion", "inversion_bias")]
        rows += [[f"inversion: {k}", shown(k, v)] for k, v in numbers.get("inversion", {}).items()]
        if bias_numbers is not None:
            from probe.world.card import share_text

            rows += [[f"inverted 'a {k}' → red", share_text(bias_numbers[k])] for k in ("star", "circle")]
        console.print_table(["measurement", "value"], rows, title=f"shapes world evaluation — {state.model}")
        console.note(f"wrote {path}" + (f" and updated {card_path}" if card_path is not None and not no_card else ""))

    @world.command("train-checker")
    def train_checker_command(
        ctx: typer.Context,
        steps: Annotated[int, typer.Option("--steps", help="Optimiser steps (the shipped checker: 1500).")] = 1500,
        seed: Annotated[int, typer.Option("--seed", help="Seeds data and initialisation.")] = 0,
        threads: Annotated[int, typer.Option("--threads", help="torch CPU threads.")] = 2,
        output: Annotated[
            Path | None,
            typer.Option(
                "--output",
                "-o",
                help="Where to save (default: <out-dir>/world/shape-checker.safetensors).",
                show_default=False,
            ),
        ] = None,
        install: Annotated[
            bool, typer.Option("--install-into-package", help=INSTALL_HELP.format(what="shape checker"))
        ] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace an existing --output file.")] = False,
    ) -> None:
        """Train the independent shape checker (a small CNN on messy renders) that judges inversions."""
        import torch

        from probe.files.checks import check_new_file
        from probe.plugin import UsageError, console
        from probe.world.shape_checker import CHECKER_PATH, checker_accuracy, save_shape_checker, train_shape_checker

        if steps < 1:
            raise UsageError("--steps must be ≥ 1")
        check_new_file(output, force)  # before training; the default file is the tool's own
        path = _trained_path(ctx, output, install, "shape-checker.safetensors", CHECKER_PATH)
        torch.set_num_threads(threads)
        with console.progress("training shape checker", steps, extra="{task.fields[info]}") as advance:
            checker = train_shape_checker(
                steps=steps, seed=seed, on_progress=lambda step, loss: advance(1, info=f"loss {loss:.3f}")
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        save_shape_checker(checker, path)
        messy, clean = checker_accuracy(checker)
        console.echo(f"{path}  accuracy: messy renders {messy:.1%}, clean renders {clean:.1%}")
