"""Inversion validation on the shapes world: do inversions of "a <colour> <shape>" show that colour and shape?

Colour: each pixel goes to its nearest reference colour (the world's 8 palette colours, plus greys
spanning the world's background range); grey pixels are background; the prompt's colour must be the
most frequent palette colour among the rest. Shape: the world's independent shape checker (a CNN
trained on messy renders, not the CLIP) must name the prompt's shape.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from probe.plugin import Session
from probe.world.captions import CaptionSpec, ObjectSpec, caption_text
from probe.world.evaluate import dominant_palette_colour
from probe.world.vocab import COLOURS, SHAPES
from probe_invert.render import invert
from probe_invert.settings import InvertSettings


def colour_shape_prompts() -> list[tuple[str, str, str]]:
    """(prompt, colour, shape) for all 48 colour x shape one-object captions, colour-major."""
    return [
        (caption_text(CaptionSpec(ObjectSpec(shape, colour))), colour, shape) for colour in COLOURS for shape in SHAPES
    ]


def dominant_colours(images: torch.Tensor) -> list[str | None]:
    """Most frequent palette colour among non-background pixels of each image [N,3,H,W]; None if all grey.

    The world's own rule (`probe.world.evaluate.dominant_palette_colour`), so the model card and this
    validation judge colour the same way.
    """
    index = dominant_palette_colour(images.detach().float().cpu())
    return [COLOURS[i] if i >= 0 else None for i in index.tolist()]


@dataclass
class ValidationResult:
    """Per-image findings and the two rates; `images` stay out of as_dict()."""

    prompts: list[str]
    seeds: list[int]
    expected_colour: list[str]
    expected_shape: list[str]
    found_colour: list[str | None]
    found_shape: list[str] | None
    cosine: list[float]
    colour_match: float
    shape_match: float | None
    median_cosine: float
    seconds: float
    settings: dict[str, Any]
    checker: str
    images: list[torch.Tensor] = field(default_factory=list, repr=False)

    @property
    def n_images(self) -> int:
        return len(self.prompts)

    def per_group(self) -> dict[str, dict[str, float]]:
        """Colour-match rate per colour and shape-match rate per shape."""
        out: dict[str, dict[str, float]] = {"colour": {}, "shape": {}}
        for colour in COLOURS:
            hits = [f == e for f, e in zip(self.found_colour, self.expected_colour, strict=True) if e == colour]
            out["colour"][colour] = sum(hits) / len(hits) if hits else float("nan")
        if self.found_shape is not None:
            for shape in SHAPES:
                hits = [f == e for f, e in zip(self.found_shape, self.expected_shape, strict=True) if e == shape]
                out["shape"][shape] = sum(hits) / len(hits) if hits else float("nan")
        return out

    def as_dict(self) -> dict[str, Any]:
        keys = (
            "prompts",
            "seeds",
            "expected_colour",
            "expected_shape",
            "found_colour",
            "found_shape",
            "cosine",
            "colour_match",
            "shape_match",
            "median_cosine",
            "seconds",
            "settings",
            "checker",
        )
        return {**{k: getattr(self, k) for k in keys}, "n_images": self.n_images, "per_group": self.per_group()}


def _checker_shapes(images: torch.Tensor, checker_path: Path | None) -> tuple[list[str] | None, str]:
    from probe.world.shape_checker import CHECKER_PATH, load_shape_checker, predict_shapes

    path = Path(checker_path) if checker_path else CHECKER_PATH
    if not path.is_file():
        return None, f"missing ({path})"
    checker = load_shape_checker(path)
    return [SHAPES[i] for i in predict_shapes(checker, images).tolist()], str(path)


def validate(
    session: Session,
    settings: InvertSettings,
    seeds: Sequence[int] = (0, 1),
    *,
    checker_path: Path | None = None,
    prompts: list[tuple[str, str, str]] | None = None,
    on_step: Callable[[int, torch.Tensor], None] | None = None,
) -> ValidationResult:
    """Invert every colour x shape prompt for each seed (one batched run) and score the images."""
    table = prompts or colour_shape_prompts()
    results = invert(session, [p for p, _, _ in table], list(seeds), settings, on_step=on_step)
    images = torch.stack([r.image for r in results])
    expected = [(c, s) for _, c, s in table for _ in seeds]
    found_colour = dominant_colours(images)
    found_shape, checker = _checker_shapes(images, checker_path)
    colour_match = sum(f == c for f, (c, _) in zip(found_colour, expected, strict=True)) / len(results)
    shape_match = None
    if found_shape is not None:
        shape_match = sum(f == s for f, (_, s) in zip(found_shape, expected, strict=True)) / len(results)
    cosines = [r.cosine for r in results]
    return ValidationResult(
        prompts=[r.prompt for r in results],
        seeds=[r.seed for r in results],
        expected_colour=[c for c, _ in expected],
        expected_shape=[s for _, s in expected],
        found_colour=found_colour,
        found_shape=found_shape,
        cosine=cosines,
        colour_match=colour_match,
        shape_match=shape_match,
        median_cosine=statistics.median(cosines),
        seconds=sum(r.seconds for r in results),
        settings=settings.to_dict(),
        checker=checker,
        images=[r.image for r in results],
    )
