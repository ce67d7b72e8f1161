"""Inputs for shuffle tests: prompt files, image files with captions, JSONL pairs, `probe invert` outputs, world scenes.

Each loader returns plain data (prompts, or images in [0, 1] with captions and names) and raises a
DataError/UsageError that names the file and says what to fix.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.plugin import DataError, UsageError, images_under, load_photo, read_json

if TYPE_CHECKING:  # torch only in annotations: reading a prompt file (and failing on it) stays instant
    import torch

# Keys a sidecar may hold its prompt under, in order of preference (`probe invert` writes "prompt").
SIDECAR_PROMPT_KEYS = ("prompt", "caption", "text")
# World scenes use seeds far from the training run's (seed * 1_000_003 + step).
WORLD_SEED_OFFSET = 700_000_017
WORLD_RELATIONS = ("left of", "right of", "above", "below")
MAX_WORLD_SCENES = 20_000  # rendered at once: 20,000 × 3×64×64 floats ≈ 1 GB


@dataclass
class ImageCaptions:
    """Images with their true caption and a display name each: photos read from files (PIL images,
    for the model's own preprocessing) or [3,H,W] tensors in [0, 1] of any size."""

    names: list[str] = field(default_factory=list)
    images: list[Any] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.captions)

    def extend(self, other: ImageCaptions) -> None:
        self.names += other.names
        self.images += other.images
        self.captions += other.captions


def read_prompt_file(path: Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped."""
    from probe.plugin import numbered_lines

    prompts = [line for _, line in numbered_lines(path, "prompt", DataError)]
    if not prompts:
        raise DataError(f"{path}: no prompts in the file", hint="write one prompt per line")
    return prompts


def _prompt_from(data: object) -> str | None:
    if isinstance(data, str):
        return data.strip() or None
    if isinstance(data, dict):
        for key in SIDECAR_PROMPT_KEYS:
            if key in data and (found := _prompt_from(data[key])):
                return found
    return None


def sidecar_prompt(image: Path) -> str | None:
    """The prompt recorded next to an image: `<name>.json` (as `probe invert` writes) or a PNG text chunk."""
    sidecar = image.with_suffix(".json")
    if sidecar.is_file():
        return _prompt_from(read_json(sidecar))
    if image.suffix.lower() == ".png" and image.is_file():
        from PIL import Image

        try:
            with Image.open(image) as im:
                chunks = dict(getattr(im, "text", {}) or {})
        except (OSError, Image.DecompressionBombError):
            return None
        for key in SIDECAR_PROMPT_KEYS:
            if key in chunks:
                try:
                    return _prompt_from(json.loads(chunks[key]))
                except json.JSONDecodeError:
                    return _prompt_from(chunks[key])
    return None


def image_files(images: Sequence[Path], captions: Sequence[str]) -> ImageCaptions:
    """Image files with one --caption each (in order), or with none: then each image's sidecar prompt."""
    images = [Path(p) for p in images]
    if captions and len(captions) != len(images):
        raise UsageError(
            f"{len(images)} --image but {len(captions)} --caption",
            hint="give one --caption per --image, or none to read each image's sidecar prompt",
        )
    out = ImageCaptions()
    for i, path in enumerate(images):
        caption = captions[i] if captions else sidecar_prompt(path)
        if caption is None:
            raise UsageError(
                f"no caption for {path}: no --caption given and no sidecar prompt next to it",
                hint="pass --caption TEXT for each --image",
            )
        out.extend(ImageCaptions([str(path)], [load_photo(path)], [caption]))
    return out


def jsonl_pairs(path: Path) -> ImageCaptions:
    """Lines of {"image": path, "caption": text}; relative image paths are relative to the JSONL file."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DataError(f"JSONL file not found: {path}") from exc
    out = ImageCaptions()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:{number}: not valid JSON", hint='write one {"image": ..., "caption": ...} per line'
            ) from exc
        if (
            not isinstance(record, dict)
            or not isinstance(record.get("image"), str)
            or not isinstance(record.get("caption"), str)
        ):
            raise DataError(f"{path}:{number}: needs string fields 'image' and 'caption'")
        image = Path(record["image"])
        image = image if image.is_absolute() else path.parent / image
        out.extend(ImageCaptions([str(image)], [load_photo(image)], [record["caption"]]))
    if not len(out):
        raise DataError(f"{path}: no image/caption pairs in the file")
    return out


def _finished_inversion_prompt(image: Path) -> str | None:
    """The prompt of a finished `probe invert` image: its `<stem>.json` sidecar, status "done" (or none recorded)."""
    sidecar = image.with_suffix(".json")
    if not sidecar.is_file():
        return None
    data = read_json(sidecar)
    if not isinstance(data, dict) or data.get("status", "done") != "done":
        return None
    return _prompt_from(data)


def invert_outputs(folder: Path) -> ImageCaptions:
    """Every finished image under `folder` (recursively) with a JSON sidecar prompt, as `probe invert` writes them.

    `probe invert` lays out <folder>/<prompt>/seed-N.png + seed-N.json ({"prompt": ..., "status": "done", ...});
    snapshots, GIFs and contact sheets have no sidecar and are skipped, as are interrupted or NaN runs.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"not a folder: {folder}", hint="give the folder `probe invert` wrote its images to")
    paths = images_under(folder)
    out = ImageCaptions()
    for path in paths:
        if (prompt := _finished_inversion_prompt(path)) is not None:
            out.extend(ImageCaptions([str(path)], [load_photo(path)], [prompt]))
    if not len(out):
        raise DataError(
            f"no images with a prompt sidecar under {folder}", hint="run `probe invert` first, or use --image/--caption"
        )
    return out


@dataclass
class WorldPairs:
    """Rendered two-object scenes [N,3,64,64] with their true captions ("a red circle left of a blue star")."""

    images: torch.Tensor
    captions: list[str]

    def as_image_captions(self) -> ImageCaptions:
        names = [f"scene {i + 1}" for i in range(len(self.captions))]
        return ImageCaptions(names, list(self.images), list(self.captions))


def world_pairs(n: int, seed: int = 0, relations: Sequence[str] = WORLD_RELATIONS, size: int = 64) -> WorldPairs:
    """n two-object scenes of the built-in world (distinct shapes and colours) with their true captions.

    Colour swaps and relation swaps always change the truth of these captions, so the true caption
    should beat them; a bag-of-words model scores them equal.
    """
    from probe.world.captions import ORDERED_RELATIONS, CaptionSpec, ObjectSpec, caption_text
    from probe.world.render import render
    from probe.world.scenes import build_scenes, complete
    from probe.world.vocab import COLOURS, SHAPES

    if not 1 <= n <= MAX_WORLD_SCENES:
        raise UsageError(f"--world needs 1 to {MAX_WORLD_SCENES:,} scenes, got {n}", hint="run several seeds for more")
    bad = [r for r in relations if r not in ORDERED_RELATIONS]
    if bad or not relations:
        raise UsageError(
            f"unknown world relation {bad[0] if bad else ''!r}", hint=f"choose from {', '.join(ORDERED_RELATIONS)}"
        )
    rng = random.Random(seed + WORLD_SEED_OFFSET)
    specs = []
    for _ in range(n):
        shapes, colours = rng.sample(SHAPES, 2), rng.sample(COLOURS, 2)
        specs.append(
            CaptionSpec(
                ObjectSpec(shapes[0], colours[0]), ObjectSpec(shapes[1], colours[1]), rng.choice(list(relations))
            )
        )
    scenes = build_scenes([complete(spec, rng) for spec in specs], rng)
    return WorldPairs(render(scenes, size=size), [caption_text(spec) for spec in specs])
