"""Entry point of the built-in `shuffle` plugin: `probe shuffle-test` (does the model care about word order?).

Only typer and the stdlib at import time (`probe --help` must not import torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from probe.plugin import hookimpl

if TYPE_CHECKING:
    from probe_shuffle.order_scores import ShuffleReport
    from probe_shuffle.sources import ImageCaptions

PROBE_API = 1
CSV_FIELDS = ("item", "caption", "original_score", "perturbation", "variant", "score", "delta")


def _csv_text(report: ShuffleReport) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.variant_rows())
    return buffer.getvalue()


def _image_inputs(
    images: list[Path],
    captions: list[str],
    jsonl: Path | None,
    invert_dir: Path | None,
    world: int | None,
    relations: list[str],
    seed: int,
) -> ImageCaptions:
    """All image–caption sources of the command line, in a fixed order (files, JSONL, invert folder, world)."""
    from probe.plugin import UsageError
    from probe_shuffle import sources

    if captions and not images:
        raise UsageError("--caption needs an --image to go with it", hint="give --image FILE --caption TEXT pairs")
    pairs = sources.ImageCaptions()
    if images:
        pairs.extend(sources.image_files(images, captions))
    if jsonl is not None:
        pairs.extend(sources.jsonl_pairs(jsonl))
    if invert_dir is not None:
        pairs.extend(sources.invert_outputs(invert_dir))
    if world is not None:
        pairs.extend(sources.world_pairs(world, seed, relations or sources.WORLD_RELATIONS).as_image_captions())
    return pairs


def _show_models(
    reports: dict[str, tuple[dict, ShuffleReport]], as_json: bool, csv_path: Path | None, details: bool
) -> None:
    """Several models' reports: one summary table with a row per model (and perturbation); --json
    keyed by model spec; --csv and --details with a leading model column."""
    from probe.plugin import atomic_write_text, console

    if csv_path is not None:
        body = [_csv_text(report).splitlines() for _, report in reports.values()]
        lines = ["model," + body[0][0]] + [
            _csv_field(spec) + "," + line for spec, rows in zip(reports, body, strict=True) for line in rows[1:]
        ]
        atomic_write_text(csv_path, "\n".join(lines) + "\n")
        console.note(f"Wrote {csv_path}")
    if as_json:
        console.print_json({spec: {"model": model, **report.as_dict()} for spec, (model, report) in reports.items()})
        return
    first = next(iter(reports.values()))[1]
    mode = "cos(T(p), T(p'))" if first.mode == "text" else "cos(V(x), T(p')) vs cos(V(x), T(p))"
    title = f"Shuffle test — {len(reports)} models, {len(first.items)} captions, {mode}"
    columns: list[str] = []
    rows: list[list[str]] = []
    for spec, (_, report) in reports.items():
        _, columns, own = report.summary_table(title)
        rows += [[spec, *row] for row in own]
    console.print_table(["model", *columns], rows, title=title)
    for note in dict.fromkeys(note for _, report in reports.values() for note in report.notes()):
        console.note(note)
    if details:
        text_mode = first.mode == "text"
        detail_rows = [
            [
                spec,
                item.name,
                item.caption,
                *([] if text_mode else [f"{item.original_score:.4f}"]),
                v.perturbation,
                v.text,
                f"{v.score:.4f}",
                f"{v.delta:+.4f}",
            ]
            for spec, (_, report) in reports.items()
            for item in report.items
            for v in item.variants
        ]
        detail_columns = ["model", "item", "caption", *([] if text_mode else ["score"]), "perturbation"]
        console.print_table([*detail_columns, "variant", "score'", "Δ"], detail_rows, title="Perturbed captions")


def _csv_field(text: str) -> str:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([text])
    return buffer.getvalue()


@hookimpl
def register_perturbations(register) -> None:
    from probe_shuffle.perturbations import BUILTIN

    for p in BUILTIN:
        register(p.name, p.apply, p.summary, needs_tagger=p.needs_tagger, needs=p.needs)


@hookimpl
def register_experiment_steps(register) -> None:
    from probe_shuffle.shuffle_step import SHUFFLE_STEP

    register(SHUFFLE_STEP)


@hookimpl
def register_python_api(register) -> None:
    from probe_shuffle.api import shuffle_test

    register("shuffle_test", shuffle_test, "how much scores change when captions are perturbed")
    from probe_shuffle.sources import world_pairs

    register(
        "world_scenes",
        world_pairs,
        "rendered two-object scenes of the built-in world with their true captions (`shuffle-test --world`)",
    )


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("shuffle-test", rich_help_panel="Probes")
    def shuffle_test(
        ctx: typer.Context,
        prompts: Annotated[
            list[str] | None,
            typer.Argument(help="Prompts for the text-only test: cos(T(p), T(p')).", show_default=False),
        ] = None,
        file: Annotated[
            Path | None,
            typer.Option("--file", "-f", help="Text file of prompts, one a line ('#' comments).", show_default=False),
        ] = None,
        image: Annotated[
            list[Path] | None,
            typer.Option(
                "--image",
                "-i",
                help="Image file (repeat); scored against its --caption, or its sidecar prompt.",
                show_default=False,
            ),
        ] = None,
        caption: Annotated[
            list[str] | None,
            typer.Option("--caption", help="True caption of each --image, in order (repeat).", show_default=False),
        ] = None,
        jsonl: Annotated[
            Path | None,
            typer.Option("--jsonl", help='JSONL of {"image": path, "caption": text} lines.', show_default=False),
        ] = None,
        invert_dir: Annotated[
            Path | None,
            typer.Option(
                "--invert-dir",
                help="Folder of `probe invert` images; each sidecar's prompt is the caption.",
                show_default=False,
            ),
        ] = None,
        world: Annotated[
            int | None,
            typer.Option(
                "--world",
                help="N rendered two-object scenes of the built-in world with their true captions.",
                show_default=False,
            ),
        ] = None,
        relation: Annotated[
            list[str] | None,
            typer.Option(
                "--relation",
                help="World relations to use (repeat): left of, right of, above, below (default all).",
                show_default=False,
            ),
        ] = None,
        perturb: Annotated[
            list[str] | None,
            typer.Option(
                "--perturb", "-p", help="Perturbation (repeat; default: all available). See --list.", show_default=False
            ),
        ] = None,
        variants: Annotated[
            int,
            typer.Option("--variants", "-k", help="Distinct perturbed captions per type and caption.", min=1, max=100),
        ] = 1,
        seed: Annotated[
            int | None,
            typer.Option(
                "--seed",
                "-s",
                min=0,
                max=2**63 - 1,
                help="Perturbation (and world scene) seed (default: --seed of probe, else 0).",
                show_default=False,
            ),
        ] = None,
        truncate: Annotated[
            bool, typer.Option("--truncate", help="Cut captions longer than the model's context instead of failing.")
        ] = False,
        details: Annotated[
            bool, typer.Option("--details", help="Also print every perturbed caption with its score.")
        ] = False,
        list_only: Annotated[bool, typer.Option("--list", help="List the perturbations and exit.")] = False,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print machine-readable JSON (summary and per-caption details).")
        ] = False,
        csv_path: Annotated[
            Path | None,
            typer.Option("--csv", help="Write one CSV row per perturbed caption to this file.", show_default=False),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace the --csv file if it exists.")] = False,
    ) -> None:
        """Does the model care about word order? Score captions against shuffled / swapped versions of themselves.

        Text mode (prompts): cos(T(p), T(p')). Image mode (--image, --jsonl, --invert-dir, --world):
        cos(V(x), T(p')) vs cos(V(x), T(p)). Per perturbation: mean and std of the score change,
        order blindness (share of perturbations scoring at least the original) and ARO-style P@1
        (share of captions whose original beats all its perturbations).
        """
        from probe.plugin import (
            UsageError,
            atomic_write_text,
            console,
            current_session,
            options,
            release_session,
            session_for,
        )
        from probe_shuffle.perturbations import (
            check_names,
            describe_perturbations,
            list_perturbations,
            registered_perturbations,
            spacy_tagger,
        )

        if list_only:
            rows: list[list[Any]] = [
                [name, summary, "yes" if ok else "no (needs spaCy + model)"]
                for name, summary, ok in describe_perturbations()
            ]
            if as_json:
                console.print_json(
                    [{"name": n, "summary": s, "available": ok} for n, s, ok in describe_perturbations()]
                )
            else:
                console.print_table(["name", "what it does", "available"], rows, title="Perturbations")
            return
        state = options(ctx)
        seed = seed if seed is not None else (state.seed if state.seed is not None else 0)
        names = check_names(list(perturb)) if perturb else list_perturbations()
        known = registered_perturbations()
        if any(known[name].needs_tagger for name in names):
            spacy_tagger()  # fail with the install hint before loading a model
        text_prompts = list(prompts or [])
        if file is not None:
            from probe_shuffle.sources import read_prompt_file

            text_prompts += read_prompt_file(file)
        has_images = bool(image or caption or jsonl or invert_dir or world is not None)
        if text_prompts and has_images:
            raise UsageError(
                "prompts (text mode) and images (image mode) cannot be mixed in one run",
                hint="give image captions with --caption/--jsonl, or run the prompts separately",
            )
        if relation and world is None:
            raise UsageError("--relation only applies to --world scenes", hint="add --world N")
        if not text_prompts and not has_images:
            raise UsageError(
                "nothing to test", hint="give prompts, --file, --image/--caption, --jsonl, --invert-dir or --world N"
            )
        from probe.plugin import check_images, check_prompts

        check_prompts(text_prompts, image_option="--image")
        check_prompts(list(caption or []), "caption")
        check_images(list(image or []))  # before the model loads
        from probe.files.checks import check_new_file

        check_new_file(csv_path, force)

        pairs = None
        if not text_prompts:  # read (and refused) before the model loads
            pairs = _image_inputs(
                list(image or []), list(caption or []), jsonl, invert_dir, world, list(relation or []), seed
            )
        from probe_shuffle.order_scores import image_shuffle_test, text_shuffle_test

        def run_test(session: Any) -> ShuffleReport:
            if pairs is None:
                return text_shuffle_test(session, text_prompts, names, seed, variants, truncate=truncate)
            return image_shuffle_test(
                session,
                pairs.images,
                pairs.captions,
                names,
                seed,
                variants,
                item_names=pairs.names,
                truncate=truncate,
            )

        if len(state.models) > 1:  # a comparison: each model in turn, one loaded at a time
            reports: dict[str, tuple[dict, ShuffleReport]] = {}
            for spec in state.models:
                one = session_for(ctx, spec)
                reports[spec] = (one.describe(), run_test(one))
                del one
                release_session(ctx, spec)
            _show_models(reports, as_json, csv_path, details)
            return
        session = current_session(ctx)  # shows "loading MODEL…" on a terminal
        report = run_test(session)
        if csv_path is not None:
            atomic_write_text(csv_path, _csv_text(report))
            console.note(f"Wrote {csv_path}")
        if as_json:
            console.print_json({"model": current_session(ctx).describe(), **report.as_dict()})
            return
        mode = "cos(T(p), T(p'))" if report.mode == "text" else "cos(V(x), T(p')) vs cos(V(x), T(p))"
        console.print_table(
            *report.summary_table(f"Shuffle test — {state.model}, {len(report.items)} captions, {mode}")
        )
        for note in report.notes():
            console.note(note)
        if details:
            text_mode = report.mode == "text"  # the original's score is 1 for every caption: not shown
            rows = [
                [
                    item.name,
                    item.caption,
                    *([] if text_mode else [f"{item.original_score:.4f}"]),
                    v.perturbation,
                    v.text,
                    f"{v.score:.4f}",
                    f"{v.delta:+.4f}",
                ]
                for item in report.items
                for v in item.variants
            ]
            columns = ["item", "caption", *([] if text_mode else ["score"]), "perturbation", "variant", "score'", "Δ"]
            console.print_table(columns, rows, title="Perturbed captions")
