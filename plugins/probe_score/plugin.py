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
    @app.command("score", rich_help_panel="Probes")
    def score(
        ctx: typer.Context,
        images: Annotated[list[Path], typer.Argument(help="Image files to score.", show_default=False)],
        prompt: Annotated[
            list[str], typer.Option("--prompt", "-p", help="A prompt (repeat for several).", show_default=False)
        ],
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
        csv_path: Annotated[
            Path | None,
            typer.Option(
                "--csv", help="Write one CSV row per image and prompt to this file (full paths).", show_default=False
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace the --csv file if it exists.")] = False,
    ) -> None:
        """CLIP cosine of each image against each prompt, and its zero-shot label (softmax over prompts)."""
        from probe.plugin import check_images, check_prompt_lengths, check_prompts

        check_prompts(list(prompt))
        check_images(images)  # headers only: a missing or bad file fails before torch or the model loads
        from probe.files.checks import check_new_file

        check_new_file(csv_path, force)
        check_prompt_lengths(ctx, list(prompt))  # the tokenizer only, before the model loads
        from probe.plugin import console, current_session, load_photo, options, score_images

        state = options(ctx)
        pixels = [load_photo(p) for p in images]
        result = score_images(current_session(ctx), pixels, list(prompt), names=[str(p) for p in images])
        if csv_path is not None:
            from probe.plugin import atomic_write_text

            atomic_write_text(csv_path, _csv_text(result))
            console.note(f"Wrote {csv_path}")
        if as_json:
            console.print_json({"model": current_session(ctx).describe(), **result.as_dict()})
            return
        folder, names = _common_folder(images)
        rows = []
        for name, cos, probs, label in zip(names, result.cosine, result.probs, result.labels, strict=True):
            rows.append([name, *(f"{c:.3f} ({p:.0%})" for c, p in zip(cos, probs, strict=True)), label])
        where = f", images in {folder}" if folder else ""
        console.print_table(["image", *result.prompts, "label"], rows, title=f"CLIP scores — {state.model}{where}")


def _csv_text(result) -> str:
    """image, prompt, cosine, probability (softmax over the prompts), label: one row per pair."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image", "prompt", "cosine", "probability", "label"])
    for name, cos, probs, label in zip(result.names, result.cosine, result.probs, result.labels, strict=True):
        writer.writerows([name, p, c, q, label] for p, c, q in zip(result.prompts, cos, probs, strict=True))
    return buffer.getvalue()


def _common_folder(images: list[Path]) -> tuple[str, list[str]]:
    """The folder all images share (shown once in the title) and each image's path below it, so the
    table shows 'red-square/seed-0.png' rather than the same long prefix on every row."""
    import os

    try:
        common = os.path.commonpath([os.path.dirname(os.path.normpath(p)) for p in images])
    except ValueError:  # absolute and relative paths mixed
        common = ""
    if not common or common in (".", os.sep):
        return "", [str(p) for p in images]
    return common, [os.path.relpath(os.path.normpath(p), common) for p in images]
