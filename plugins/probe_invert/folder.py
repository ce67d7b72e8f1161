"""Inverting into an output folder, as `probe invert` does: resume checks, the folder's lock, a PNG and
JSON sidecar saved as each chunk ends, the contact sheet. Every front end (the command line, the web
page) calls this one function, so the files are the same whichever made them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the render loop imports torch: listing what plugins register must not
    from probe_invert.render import PreviewCallback, StepCallback, StopCheck

FAILED = ("failed", "nan")  # statuses of an optimisation that ended without a usable image


@dataclass
class FolderRun:
    """What one inversion into a folder did: a row per (prompt, seed), prompt-major, with its files."""

    folder: Path
    rows: list[dict[str, Any]]
    sheet: Path | None
    interrupted: bool
    skipped: int
    notes: list[str]
    model: dict[str, Any]
    ensemble: list[dict[str, Any]] = field(default_factory=list)
    settings: Any = None

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [row for row in self.rows if row["status"] in FAILED]


def invert_into_folder(
    session: Any,
    folder: Path | str,
    prompts: Sequence[str],
    seeds: Sequence[int],
    settings: Any = None,
    *,
    preset: str = "default",
    knobs: dict[str, Any] | None = None,
    assignments: Sequence[str] = (),
    ensemble: Sequence[Any] = (),
    gif: bool = False,
    force: bool = False,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    on_preview: PreviewCallback | None = None,
    preview_every: int = 0,
    on_start: Callable[[int, int], None] | None = None,
) -> FolderRun:
    """Invert every prompt x seed not finished yet into FOLDER/<prompt>/seed-N.{png,json}.

    `settings` (an InvertSettings) or `preset` plus `knobs` (steps=2, size=16, ...) and `assignments`
    (as `--set`: "priors.tv=0.1") choose the recipe.
    A finished image made with other settings is refused unless `force`. The callbacks are those of
    `invert_items`; a stop request keeps every image finished or started (status "interrupted").
    on_start gets (images to compute, images asked for) once the finished ones are known.
    """
    from probe.plugin import check_writable, folder_lock

    if settings is None:
        from probe_invert.settings import load_preset

        settings = load_preset(preset, **{k: v for k, v in (knobs or {}).items() if v is not None})
        if assignments:
            settings = settings.with_set(list(assignments))
    if gif and not settings.snapshot_every:
        settings = settings.with_overrides(snapshot_every=max(1, settings.steps // 20))
    folder = Path(folder)
    check_writable(folder)
    with folder_lock(folder, "invert"):
        return _locked(
            session,
            folder,
            list(prompts),
            [int(s) for s in seeds],
            settings,
            list(ensemble),
            gif,
            force,
            {
                "on_step": on_step,
                "should_stop": should_stop,
                "on_preview": on_preview,
                "preview_every": preview_every,
                "on_start": on_start,
            },
        )


def _locked(
    session: Any,
    folder: Path,
    prompts: list[str],
    seeds: list[int],
    settings: Any,
    ensemble: list[Any],
    gif: bool,
    force: bool,
    callbacks: dict[str, Any],
) -> FolderRun:
    from probe.plugin import UsageError, remove_stale_temp_files
    from probe.world.vocab import builtin_text_notes
    from probe_invert.outputs import finished, finished_in, image_paths, made_otherwise, result_key, save_inversion
    from probe_invert.prompts import parse_prompt
    from probe_invert.render import check_ensemble, invert_items

    remove_stale_temp_files(folder)  # left by a killed run; we hold the folder's lock
    members = check_ensemble(session, ensemble)[1:]
    info = session.describe()
    members_info = [m.describe() for m in members]
    fingerprint = "+".join([info["fingerprint"], *(m["fingerprint"] for m in members_info)])  # same ensemble only
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
    if callbacks["on_start"] is not None:
        callbacks["on_start"](len(todo), len(items))
    results: dict[int, Any] = {}
    interrupted = False
    if todo:
        should_stop = callbacks["should_stop"]

        def save_chunk(rows: list[int], inversions: list) -> None:  # as each chunk ends: kill -9 loses only it
            for row, inversion in zip(rows, inversions, strict=True):
                i = todo[row]
                if inversion.steps > 0:
                    sidecar = _sidecar(inversion, info, settings, keys[i], paths[i].png.name, members_info)
                    save_inversion(paths[i], inversion, sidecar, gif)

        found = invert_items(
            session,
            [items[i] for i in todo],
            settings,
            on_step=callbacks["on_step"],
            should_stop=should_stop,
            ensemble=members,
            on_chunk=save_chunk,
            on_preview=callbacks["on_preview"],
            preview_every=callbacks["preview_every"],
        )
        interrupted = bool(should_stop and should_stop())
        results.update(zip(todo, found, strict=True))
    rows = [_row(items[i], results.get(i), previous[i], paths[i], bool(members), gif) for i in range(len(items))]
    done = finished_in(folder, ("done", "failed"))
    from probe_invert.outputs import write_invert_sheet

    sheet = write_invert_sheet(folder / "contact-sheet.png", done) if done else None
    texts = [text for p in prompts for text, _ in parse_prompt(p).parts]
    models = dict.fromkeys([info["model"], *(m["model"] for m in members_info)])
    notes = [note for model in models for note in builtin_text_notes(model, texts)]
    return FolderRun(folder, rows, sheet, interrupted, len(items) - len(todo), notes, info, members_info, settings)


def _row(item: tuple[str, int], result: Any, previous: Any, paths: Any, ensemble: bool, gif: bool) -> dict[str, Any]:
    """One image's line of the summary: this run's result, or the earlier run's sidecar when skipped."""
    prompt, seed = item
    if result is not None:
        row = {
            "prompt": prompt,
            "seed": seed,
            "cosine": result.cosine if math.isfinite(result.cosine) else None,
            "status": result.status,
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            "skipped": False,
            "message": result.message,
        }
        if ensemble:
            row["model_cosines"] = _rounded(result.model_cosines)
        saved = result.steps > 0
    else:
        row = {
            "prompt": prompt,
            "seed": seed,
            "cosine": previous.get("cosine"),
            "status": "done",
            "steps": previous.get("steps"),
            "seconds": previous.get("seconds"),
            "skipped": True,
            "message": "",
        }
        if ensemble:
            row["model_cosines"] = previous.get("model_cosines")
        saved = True
    row.update(png=str(paths.png) if saved else None, sidecar=str(paths.sidecar) if saved else None)
    if gif:
        row["gif"] = str(paths.gif) if saved and paths.gif.is_file() else None
    return row


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


def _rounded(values: list[float]) -> list[float | None]:
    return [round(v, 6) if math.isfinite(v) else None for v in values]
