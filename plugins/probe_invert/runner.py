"""CLI layer of `probe invert`: progress bar, Ctrl-C, summary table / JSON.

The computing is in `render.invert_items` and the files in `folder.invert_into_folder` (which the web
page calls too); this module only turns their callbacks and results into terminal output.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

EXIT_INTERRUPTED = 130
EXIT_ALL_FAILED = 1  # every image of the command failed: a script or `&&` chain must not go on as if it worked


def stop_on_ctrl_c() -> tuple[Callable[[], bool], Callable[[], None]]:
    """(should_stop, restore): the first Ctrl-C or SIGTERM asks the loop to stop after its step (what is
    finished is saved); a second one aborts."""
    from probe.plugin import stop_on_signals

    return stop_on_signals("Stopping after this step and saving what exists (Ctrl-C again to abort)…")


GIFS_LISTED = 8


def _gif_notes(rows: list[dict[str, Any]], folder) -> list[str]:
    """Where --gif wrote: each image's GIF path (the first few when there are many), or why there is none."""
    gifs = [r["gif"] for r in rows if r.get("gif")]
    if not gifs:
        if all(r["skipped"] for r in rows):
            return ["no GIF written: every image was already finished without one (--force redoes them)"]
        return ["no GIF written: no image got far enough for a snapshot"]
    shown = [f"gif: {_below(g, folder)}" for g in gifs[:GIFS_LISTED]]
    if len(gifs) > GIFS_LISTED:
        shown.append(f"… and {len(gifs) - GIFS_LISTED} more GIF(s) in {folder}/<prompt>/seed-<n>.gif")
    return shown


def _below(path: str, folder) -> str:
    """A file's path as the folder was given (probe-out/invert/red-square/seed-0.png), not resolved."""
    from pathlib import Path

    try:
        return str(Path(folder) / Path(path).resolve().relative_to(Path(folder).resolve()))
    except ValueError:
        return path


def run_inversions(
    ctx,
    prompts: list[str],
    seeds: list[int],
    settings,
    *,
    gif: bool = False,
    force: bool = False,
    as_json: bool = False,
    ensemble: list[str] | None = None,
) -> int:
    """Invert what is not finished yet, save it, print the summary; returns the exit code: 130 when
    stopped, 1 when every image failed (each is saved with its reason), else 0 (failures listed)."""
    from contextlib import ExitStack

    from probe.plugin import check_writable, console, current_session, folder_lock, options, session_for
    from probe_invert.folder import invert_into_folder

    state = options(ctx)
    folder = state.out_dir / "invert"
    check_writable(folder)  # before the model loads and any step runs
    with folder_lock(folder, "invert"):  # another run into the folder is refused now, not after the load
        pass
    session = current_session(ctx)
    members = [session_for(ctx, spec) for spec in ensemble or []]
    should_stop, restore = stop_on_ctrl_c()
    with ExitStack() as stack:
        bar: dict[str, Any] = {"advance": None, "steps": 0}

        def on_start(todo: int, total: int) -> None:
            if todo < total:
                console.note(
                    f"{total - todo} of {total} images already finished in {folder}: skipped (--force redoes them)"
                )
            if todo:
                chunks = math.ceil(todo / settings.batch_size)
                bar["advance"] = stack.enter_context(
                    console.progress(f"inverting {todo} image(s)", chunks * settings.steps, extra="{task.fields[info]}")
                )

        def on_step(step: int, cosine) -> None:
            bar["advance"](step - bar["steps"], info=f"cos {float(cosine.mean()):.3f}")
            bar["steps"] = step

        try:
            run = invert_into_folder(
                session,
                folder,
                prompts,
                seeds,
                settings,
                ensemble=members,
                gif=gif,
                force=force,
                on_step=on_step,
                should_stop=should_stop,
                on_start=on_start,
            )
        finally:
            restore()
    rows, sheet, interrupted, notes = run.rows, run.sheet, run.interrupted, run.notes
    info, members_info = run.model, run.ensemble
    for note in notes:
        console.note(note)
    failed = run.failed
    for row in failed:
        console.note(f"failed: {row['prompt']!r} seed {row['seed']}: {row['message']}")
    if as_json:
        console.print_json(
            {
                "model": info,
                "ensemble": members_info,
                "preset": settings.preset,
                "settings": settings.to_dict(),
                "images": rows,
                "contact_sheet": str(sheet) if sheet else None,
                "interrupted": interrupted,
                "failed": len(failed),
                "notes": notes,
            }
        )
    else:
        models = " + ".join([info["model"], *(m["model"] for m in members_info)])
        console.print_table(
            f"probe invert — {models}, preset {settings.preset}",
            ["prompt", "seed", "cosine", "status", "steps", "seconds"],
            [
                [
                    r["prompt"],
                    r["seed"],
                    f"{r['cosine']:.3f}" if r["cosine"] is not None else "-",
                    r["status"] + (" (skipped)" if r["skipped"] else ""),
                    r["steps"],
                    r["seconds"],
                ]
                for r in rows
            ],
        )
        example = next((r["png"] for r in rows if r["png"]), None)
        if example:
            console.note(f"images: {folder}/<prompt>/seed-<n>.png, e.g. {_below(example, folder)}")
        if sheet:
            console.note(f"contact sheet: {sheet}")
        for note in _gif_notes(rows, folder) if gif else []:
            console.note(note)
    if interrupted:
        partial = sum(1 for r in rows if r["status"] == "interrupted" and r["png"])
        console.note(f"Interrupted: saved {partial} partial image(s); rerun the same command to finish the rest.")
        return EXIT_INTERRUPTED
    if failed:
        console.note(
            f"{len(failed)} of {len(rows)} image(s) failed (saved and marked failed; not skipped by a rerun, "
            "which gives the same result with the same settings: change --steps, --preset or the prompt)"
        )
    return EXIT_ALL_FAILED if len(failed) == len(rows) else 0
