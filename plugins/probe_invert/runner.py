"""CLI layer of `probe invert`: resume checks, progress bar, Ctrl-C, saving files, summary table / JSON.

The computing is all in `render.invert_items`; this module only decides what to run and writes results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

EXIT_INTERRUPTED = 130
EXIT_ALL_FAILED = 1  # every image of the command failed: a script or `&&` chain must not go on as if it worked
FAILED = ("failed", "nan")  # statuses of an optimisation that ended without a usable image


def stop_on_ctrl_c() -> tuple[Callable[[], bool], Callable[[], None]]:
    """(should_stop, restore): the first Ctrl-C or SIGTERM asks the loop to stop after its step (what is
    finished is saved); a second one aborts."""
    from probe.plugin import stop_on_signals

    return stop_on_signals("Stopping after this step and saving what exists (Ctrl-C again to abort)…")


def _sidecar(
    inversion, session_info: dict[str, Any], settings, key: str, png_name: str, ensemble: list[dict[str, Any]]
) -> dict[str, Any]:
    from probe_invert.outputs import version

    extra = {"ensemble": ensemble, "model_cosines": _rounded(inversion.model_cosines)} if ensemble else {}
    return {
        **extra,
        "prompt": inversion.prompt,
        "seed": inversion.seed,
        "model": session_info["model"],
        "fingerprint": session_info["fingerprint"],
        "device": session_info["device"],
        "precision": session_info["precision"],
        "preset": settings.preset,
        "settings": settings.to_dict(),
        "sizes": [[step, size] for step, size in settings.size_schedule(int(session_info["image_size"])).items()],
        "cosine": round(inversion.cosine, 6) if math.isfinite(inversion.cosine) else None,
        "start_cosine": round(inversion.start_cosine, 6) if math.isfinite(inversion.start_cosine) else None,
        "seconds": round(inversion.seconds, 3),
        "steps": inversion.steps,
        "status": inversion.status,
        "message": inversion.message,
        "version": version(),
        "key": key,
        "image": png_name,
    }


def _rebuild_sheet(folder, done: list):
    """The contact sheet of every finished or failed image in the folder (this run's and earlier runs'), or None."""
    from probe_invert.outputs import write_invert_sheet

    return write_invert_sheet(folder / "contact-sheet.png", done) if done else None


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


def _rounded(values: list[float]) -> list[float | None]:
    return [round(v, 6) if math.isfinite(v) else None for v in values]


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
    from probe.plugin import check_writable, folder_lock, options

    state = options(ctx)
    folder = state.out_dir / "invert"
    check_writable(folder)  # before the model loads and any step runs
    with folder_lock(folder, "invert"):
        return _run_locked(
            ctx, folder, prompts, seeds, settings, gif=gif, force=force, as_json=as_json, ensemble=ensemble
        )


def _run_locked(
    ctx,
    folder,
    prompts: list[str],
    seeds: list[int],
    settings,
    *,
    gif: bool,
    force: bool,
    as_json: bool,
    ensemble: list[str] | None,
) -> int:
    from probe.plugin import UsageError, console, current_session, remove_stale_temp_files, session_for
    from probe_invert.outputs import finished, finished_in, image_paths, made_otherwise, result_key, save_inversion
    from probe_invert.render import check_ensemble, invert_items

    remove_stale_temp_files(folder)  # left by a killed run; we hold the folder's lock
    session = current_session(ctx)
    members = check_ensemble(session, [session_for(ctx, spec) for spec in ensemble or []])[1:]
    info = session.describe()
    members_info = [m.describe() for m in members]
    fingerprint = "+".join(
        [info["fingerprint"], *(m["fingerprint"] for m in members_info)]
    )  # resume only the same ensemble
    items = [(p, s) for p in prompts for s in seeds]
    paths = [image_paths(folder, p, s) for p, s in items]
    keys = [result_key(p, s, fingerprint, info["device"], info["precision"], settings.to_dict()) for p, s in items]
    clashes = [i for i, (pa, k) in enumerate(zip(paths, keys, strict=True)) if made_otherwise(pa, k)]
    if clashes and not force:
        raise UsageError(
            f"{len(clashes)} finished image(s) in {folder} were made with other settings or another model, "
            f"e.g. {paths[clashes[0]].png}",
            hint="choose another folder with -o to keep them, or pass --force to replace them",
        )
    previous = [None if force else finished(pa, k) for pa, k in zip(paths, keys, strict=True)]
    todo = [i for i, prev in enumerate(previous) if prev is None]
    if len(todo) < len(items):
        console.note(
            f"{len(items) - len(todo)} of {len(items)} images already finished in {folder}: "
            "skipped (--force redoes them)"
        )
    results: dict[int, Any] = {}
    interrupted = False
    if todo:
        chunks = math.ceil(len(todo) / settings.batch_size)
        should_stop, restore = stop_on_ctrl_c()
        try:
            with console.progress(
                f"inverting {len(todo)} image(s)", chunks * settings.steps, extra="{task.fields[info]}"
            ) as advance:
                done = {"steps": 0}

                def on_step(step: int, cosine) -> None:
                    advance(step - done["steps"], info=f"cos {float(cosine.mean()):.3f}")
                    done["steps"] = step

                def save_chunk(
                    rows: list[int], inversions: list
                ) -> None:  # as each chunk ends: kill -9 loses only the chunk in flight
                    for row, inversion in zip(rows, inversions, strict=True):
                        i = todo[row]
                        if inversion.steps > 0:
                            save_inversion(
                                paths[i],
                                inversion,
                                _sidecar(inversion, info, settings, keys[i], paths[i].png.name, members_info),
                                gif,
                            )

                found = invert_items(
                    session,
                    [items[i] for i in todo],
                    settings,
                    on_step=on_step,
                    should_stop=should_stop,
                    ensemble=members,
                    on_chunk=save_chunk,
                )
            interrupted = should_stop()
        finally:
            restore()
        results.update(zip(todo, found, strict=True))
    rows = []
    for i, (prompt, seed) in enumerate(items):
        if i in results:
            r = results[i]
            row = {
                "prompt": prompt,
                "seed": seed,
                "cosine": r.cosine if math.isfinite(r.cosine) else None,
                "status": r.status,
                "steps": r.steps,
                "seconds": round(r.seconds, 3),
                "skipped": False,
                "message": r.message,
            }
            if members:
                row["model_cosines"] = _rounded(r.model_cosines)
            saved = r.steps > 0
        else:
            prev = previous[i]
            assert prev is not None  # not in results: finished by an earlier run, its sidecar read above
            row = {
                "prompt": prompt,
                "seed": seed,
                "cosine": prev.get("cosine"),
                "status": "done",
                "steps": prev.get("steps"),
                "seconds": prev.get("seconds"),
                "skipped": True,
                "message": "",
            }
            if members:
                row["model_cosines"] = prev.get("model_cosines")
            saved = True
        row.update(png=str(paths[i].png) if saved else None, sidecar=str(paths[i].sidecar) if saved else None)
        if gif:
            row["gif"] = str(paths[i].gif) if saved and paths[i].gif.is_file() else None
        rows.append(row)
    sheet = _rebuild_sheet(folder, finished_in(folder, ("done", "failed")))
    notes = _vocabulary_notes([info["model"], *(m["model"] for m in members_info)], prompts)
    for note in notes:
        console.note(note)
    failed = [row for row in rows if row["status"] in FAILED]
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


def _vocabulary_notes(models: list[str], prompts: list[str]) -> list[str]:
    """Notes for prompt words a built-in model never saw (its image for them is noise, not a finding)."""
    from probe.world.vocab import builtin_text_notes
    from probe_invert.prompts import parse_prompt

    texts = [text for p in prompts for text, _ in parse_prompt(p).parts]
    return [note for model in dict.fromkeys(models) for note in builtin_text_notes(model, texts)]
