"""Files of an inversion run: where each image lives, its PNG + JSON sidecar, resume checks, sheets, GIFs.

Used by the CLI layer (and any probe that wants the same layout); every write is atomic.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.plugin import (
    DataError,
    atomic_write_bytes,
    contact_grid,
    content_hash,
    image_intact,
    inside,
    load_image,
    pil_png_bytes,
    png_bytes,
    read_json,
    safe_name,
    to_pil,
    write_json,
)

if TYPE_CHECKING:
    from probe_invert.validation import ValidationResult

# Knobs that change memory use or what is kept, never the image itself: not part of the resume key.
NON_RESULT_KEYS = ("batch_size", "snapshot_every", "preset")


def version() -> str:
    from probe.files.versions import package_version

    return package_version("clip-probe")


@dataclass(frozen=True)
class ImagePaths:
    png: Path
    sidecar: Path
    snapshots: Path
    gif: Path


def image_paths(folder: Path, prompt: str, seed: int) -> ImagePaths:
    """folder/<safe prompt>/seed-<n>.{png,json,gif} and a snapshots folder; never outside folder."""
    base = inside(folder, safe_name(prompt))
    stem = f"seed-{int(seed)}"
    return ImagePaths(base / f"{stem}.png", base / f"{stem}.json", base / f"{stem}-snapshots", base / f"{stem}.gif")


def result_key(prompt: str, seed: int, fingerprint: str, device: str, precision: str, settings: dict[str, Any]) -> str:
    """What decides an image's pixels: a finished image with the same key is skipped on rerun."""
    knobs = {k: v for k, v in settings.items() if k not in NON_RESULT_KEYS}
    return content_hash(prompt, str(int(seed)), fingerprint, device, precision, json.dumps(knobs, sort_keys=True))


def read_sidecar(paths: ImagePaths) -> dict[str, Any] | None:
    """The image's sidecar if it is a readable JSON object, else None."""
    if not paths.sidecar.is_file():
        return None
    try:
        sidecar = read_json(paths.sidecar)
    except DataError:
        return None
    return sidecar if isinstance(sidecar, dict) else None


def finished(paths: ImagePaths, key: str) -> dict[str, Any] | None:
    """The sidecar of a finished image with this key whose PNG is intact, else None (so it is redone)."""
    sidecar = read_sidecar(paths)
    if sidecar is None or sidecar.get("key") != key or sidecar.get("status") != "done":
        return None
    return sidecar if image_intact(paths.png) else None


def made_otherwise(paths: ImagePaths, key: str) -> bool:
    """Whether a finished image made with other settings (or model, device, precision) is in the way."""
    sidecar = read_sidecar(paths)
    return bool(sidecar and sidecar.get("status") == "done" and sidecar.get("key") != key and paths.png.is_file())


def finished_in(folder: Path, statuses: tuple[str, ...] = ("done",)) -> list[tuple[dict[str, Any], Any]]:
    """(sidecar, image) of every intact image in an invert folder whose status is one of `statuses`
    (finished ones by default), by prompt then seed; each PNG decoded once (a damaged one is left out)."""
    found = []
    for sidecar_path in sorted(Path(folder).glob("*/seed-*.json")):
        paths = ImagePaths(sidecar_path.with_suffix(".png"), sidecar_path, sidecar_path, sidecar_path)
        sidecar = read_sidecar(paths)
        if not sidecar or sidecar.get("status") not in statuses:
            continue
        try:
            found.append((sidecar, load_image(paths.png)))
        except (DataError, OSError):
            continue
    return sorted(found, key=lambda f: (str(f[0].get("prompt")), int(f[0].get("seed") or 0)))


def png_metadata(sidecar: dict[str, Any]) -> dict[str, Any]:
    """PNG text chunks: everything that determines the image (no timings, so bytes are reproducible)."""
    keep = (
        "prompt",
        "seed",
        "model",
        "fingerprint",
        "ensemble",
        "model_cosines",
        "preset",
        "settings",
        "cosine",
        "steps",
        "status",
        "version",
    )
    meta = {k: sidecar[k] for k in keep if k in sidecar}
    if isinstance(meta.get("settings"), dict):  # how the work was batched is not part of what made the image
        meta["settings"] = {k: v for k, v in meta["settings"].items() if k not in NON_RESULT_KEYS}
    if "ensemble" in meta:  # the members' identity, not their device details
        meta["ensemble"] = [{"model": m["model"], "fingerprint": m["fingerprint"]} for m in meta["ensemble"]]
    return meta


def save_inversion(paths: ImagePaths, inversion, sidecar: dict[str, Any], gif: bool = False) -> None:
    """PNG (true pixel values + metadata), then the JSON sidecar last, so a sidecar means a complete PNG."""
    atomic_write_bytes(paths.png, png_bytes(inversion.image, png_metadata(sidecar)))
    for step, snap in zip(inversion.snapshot_steps, inversion.snapshots, strict=True):
        atomic_write_bytes(paths.snapshots / f"step-{step:06d}.png", png_bytes(snap))
    if gif and inversion.snapshots:
        atomic_write_bytes(paths.gif, gif_bytes([*inversion.snapshots, inversion.image]))
    write_json(paths.sidecar, sidecar)


def gif_bytes(frames: list, size: int = 128, ms: int = 120) -> bytes:
    """An animated GIF of snapshots (each resized to `size`), looping, last frame held."""
    from PIL import Image

    pils = [to_pil(f).resize((size, size), Image.Resampling.NEAREST) for f in frames]
    buf = io.BytesIO()
    durations = [ms] * (len(pils) - 1) + [ms * 8]
    pils[0].save(buf, format="GIF", save_all=True, append_images=pils[1:], duration=durations, loop=0)
    return buf.getvalue()


def write_validation_sheet(path: Path, result: ValidationResult) -> Path:
    """invert-validate's sheet: one row per colour, one column per shape and seed (both named), each
    image captioned with the colour and shape found in it, and "(miss)" where either is not the prompt's."""
    colours = list(dict.fromkeys(result.expected_colour))
    columns = list(dict.fromkeys(zip(result.expected_shape, result.seeds, strict=True)))
    cells: list[list[Any]] = [[None] * len(columns) for _ in colours]
    captions = [[""] * len(columns) for _ in colours]
    shapes: list[str | None] = [*result.found_shape] if result.found_shape else [None] * len(result.prompts)
    found = zip(result.expected_colour, result.expected_shape, result.seeds, result.found_colour, shapes, strict=True)
    for i, (colour, shape, seed, got_colour, got_shape) in enumerate(found):
        r, c = colours.index(colour), columns.index((shape, seed))
        cells[r][c] = result.images[i]
        miss = got_colour != colour or (got_shape is not None and got_shape != shape)
        captions[r][c] = f"{got_colour or 'no colour'} {got_shape or '?'}{' (miss)' if miss else ''}"
    heads = [f"{shape}, seed {seed}" for shape, seed in columns]
    return atomic_write_bytes(path, pil_png_bytes(contact_grid(cells, colours, heads, captions, cell=128)))


def write_invert_sheet(path: Path, done: list[tuple[dict[str, Any], Any]]) -> Path:
    """The folder's contact sheet from (sidecar, image) pairs: one row per prompt (named on the left),
    one column per seed (named on top), each image's cosine under it, or "FAILED" and why for an image
    whose optimisation failed; a seed a prompt lacks stays blank."""
    prompts = list(dict.fromkeys(str(sidecar["prompt"]) for sidecar, _ in done))
    seeds = sorted({int(sidecar["seed"]) for sidecar, _ in done})
    cells: list[list[Any]] = [[None] * len(seeds) for _ in prompts]
    captions = [[""] * len(seeds) for _ in prompts]
    for sidecar, image in done:
        r, c = prompts.index(str(sidecar["prompt"])), seeds.index(int(sidecar["seed"]))
        cells[r][c] = image
        cosine = sidecar.get("cosine")
        captions[r][c] = f"cos {cosine:.3f}" if cosine is not None else ""
        if sidecar.get("status") == "failed":
            captions[r][c] = f"FAILED: {sidecar.get('message') or captions[r][c]}"
    sheet = contact_grid(cells, prompts, [f"seed {s}" for s in seeds], captions, cell=128)
    return atomic_write_bytes(path, pil_png_bytes(sheet))
