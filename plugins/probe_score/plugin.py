"""Entry point of the built-in `score` plugin: registered like any third-party plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from probe.plugin import hookimpl

PROBE_API = 1


@hookimpl
def register_python_api(register) -> None:
    from probe_score.api import score

    register("score", score, "CLIP cosines and zero-shot labels of images against prompts")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("score")
    def score(
        ctx: typer.Context,
        images: Annotated[list[Path], typer.Argument(help="Image files to score.", show_default=False)],
        prompt: Annotated[
            list[str], typer.Option("--prompt", "-p", help="A prompt (repeat for several).", show_default=False)
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    ) -> None:
        """CLIP cosine of each image against each prompt, and its zero-shot label (softmax over prompts)."""
        from probe.plugin import check_images, check_prompt_lengths, check_prompts

        check_prompts(list(prompt))
        check_images(images)  # headers only: a missing or bad file fails before torch or the model loads
        check_prompt_lengths(ctx, list(prompt))  # the tokenizer only, before the model loads
        from probe.plugin import console, current_session, load_image, options, score_images

        state = options(ctx)
        pixels = [load_image(p) for p in images]
        result = score_images(current_session(ctx), pixels, list(prompt), names=[str(p) for p in images])
        if as_json:
            console.print_json({"model": current_session(ctx).describe(), **result.as_dict()})
            return
        rows = []
        for name, cos, probs, label in zip(result.names, result.cosine, result.probs, result.labels, strict=True):
            rows.append([name, *(f"{c:.3f} ({p:.0%})" for c, p in zip(cos, probs, strict=True)), label])
        console.print_table(f"CLIP scores — {state.model}", ["image", *result.prompts, "label"], rows)
