"""Scenes of the shapes world: attributes and geometry as tensors, and seeded joint caption+scene sampling.

Sampling is joint because the planted bias lives in the pairing: when a caption names a star but
not its colour, the star is red 80% of the time (a colourless circle stays uniform).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields, replace

import torch

from probe.world.captions import CaptionSpec, ObjectSpec, caption_text
from probe.world.vocab import BACKGROUND_GREY, COLOURS, POSITIONS, SHAPES, SIZES

BIASED_SHAPE = "star"
BIASED_COLOUR = "red"
BIAS_PROBABILITY = 0.8


@dataclass(frozen=True)
class PlantedBias:
    """Which colour a colourless `shape` takes how often; colour None plants no bias (uniform colours).

    A second built-in model is trained with another bias, so comparisons have a known true difference.
    """

    shape: str = BIASED_SHAPE
    colour: str | None = BIASED_COLOUR
    probability: float = BIAS_PROBABILITY


SHIPPED_BIAS = PlantedBias()
UNBIASED = PlantedBias(colour=None)

# Geometry in 64-pixel units (the renderer scales to any output size).
CANVAS = 64.0
RADIUS_RANGE = {"small": (8.0, 9.5), "big": (12.0, 14.0)}
SINGLE_CENTRES = {
    "left": (18.0, 32.0),
    "right": (46.0, 32.0),
    "top": (32.0, 18.0),
    "bottom": (32.0, 46.0),
    "center": (32.0, 32.0),
}
SINGLE_JITTER = 3.0
PAIR_NEAR, PAIR_FAR, PAIR_JITTER, PAIR_CROSS_JITTER = 16.0, 48.0, 2.0, 6.0
PAIR_HORIZONTAL_PROBABILITY = 0.6

# Which attributes a one-object caption mentions; every zero-shot prompt form is among them.
SINGLE_TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("size", "colour", "shape", "position"),
    ("colour", "shape"),
    ("shape",),
    ("colour",),
    ("position",),
    ("size", "shape"),
    ("colour", "shape", "position"),
    ("size", "colour", "shape"),
    ("size",),
    ("shape", "position"),
    ("colour", "position"),
)


@dataclass(frozen=True)
class Scenes:
    """A batch of scenes; slot 1 is empty (-1, radius 0) for one-object scenes.

    For two-object scenes slot 0 is the left (or top) object and slot 1 the right (or bottom) one.
    """

    shape: torch.Tensor  # [B, 2] long, index into SHAPES
    colour: torch.Tensor  # [B, 2] long, index into COLOURS
    size: torch.Tensor  # [B, 2] long, index into SIZES
    position: torch.Tensor  # [B, 2] long, index into POSITIONS
    centre: torch.Tensor  # [B, 2, 2] float (x, y) in 64-pixel units
    radius: torch.Tensor  # [B, 2] float in 64-pixel units, 0 when absent
    background: torch.Tensor  # [B, 3] float grey in [0, 1]

    def __len__(self) -> int:
        return self.shape.shape[0]

    @property
    def n_objects(self) -> torch.Tensor:
        return 1 + (self.shape[:, 1] >= 0).long()

    def codes(self) -> torch.Tensor:
        """Int codes [B, 8] (s, c, z, p of slot 0 then slot 1) for captions.match_matrix."""
        slots = [
            torch.stack([self.shape[:, k], self.colour[:, k], self.size[:, k], self.position[:, k]], 1) for k in (0, 1)
        ]
        return torch.cat(slots, 1)

    def select(self, index: torch.Tensor | slice | list[int]) -> Scenes:
        return Scenes(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Scenes]) -> Scenes:
        return Scenes(**{f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(Scenes)})


@dataclass(frozen=True)
class Sample:
    """Scenes with one true caption each (spec and text)."""

    scenes: Scenes
    specs: list[CaptionSpec]
    captions: list[str]


def _colour_for(
    obj: ObjectSpec, rng: random.Random, exclude: str | None = None, bias: PlantedBias = SHIPPED_BIAS
) -> str:
    """Fill an omitted colour; this is where the planted bias lives."""
    if obj.colour:
        return obj.colour
    if bias.colour is not None and obj.shape == bias.shape and exclude != bias.colour:
        if rng.random() < bias.probability:
            return bias.colour
        return rng.choice([c for c in COLOURS if c not in (bias.colour, exclude)])
    return rng.choice([c for c in COLOURS if c != exclude])


def complete(spec: CaptionSpec, rng: random.Random, bias: PlantedBias = SHIPPED_BIAS) -> tuple[list[ObjectSpec], str]:
    """Fill every attribute a caption leaves open; returns objects in scene order and the layout.

    Two objects always get distinct shapes and colours (so colour/relation swaps change the truth).
    Layout is 'single', 'horizontal' or 'vertical'.
    """
    if spec.second is None:
        obj = spec.first
        shape = obj.shape or rng.choice(SHAPES)
        colour = (
            _colour_for(replace(obj, shape=shape), rng, bias=bias) if obj.shape else (obj.colour or rng.choice(COLOURS))
        )
        filled = ObjectSpec(
            shape=shape,
            colour=colour,
            size=obj.size or rng.choice(SIZES),
            position=obj.position or rng.choice(POSITIONS),
        )
        return [filled], "single"
    first, second = spec.first, spec.second
    first_shape = first.shape or rng.choice([s for s in SHAPES if s != second.shape])
    second_shape = second.shape or rng.choice([s for s in SHAPES if s != first_shape])
    first, second = replace(first, shape=first_shape), replace(second, shape=second_shape)
    # Colour the biased (colourless star) object first so its 80% is not disturbed by distinctness.
    if second.colour is None and second.shape == bias.shape:
        second = replace(second, colour=_colour_for(second, rng, exclude=first.colour, bias=bias))
        first = replace(first, colour=_colour_for(first, rng, exclude=second.colour, bias=bias))
    else:
        first = replace(first, colour=_colour_for(first, rng, exclude=second.colour, bias=bias))
        second = replace(second, colour=_colour_for(second, rng, exclude=first.colour, bias=bias))
    first = replace(first, size=first.size or rng.choice(SIZES))
    second = replace(second, size=second.size or rng.choice(SIZES))
    if spec.relation in ("left of", "right of"):
        layout = "horizontal"
    elif spec.relation in ("above", "below"):
        layout = "vertical"
    else:
        layout = "horizontal" if rng.random() < PAIR_HORIZONTAL_PROBABILITY else "vertical"
    in_order = spec.relation not in ("right of", "below") and not (spec.relation == "and" and rng.random() < 0.5)
    objects = [first, second] if in_order else [second, first]
    near, far = ("left", "right") if layout == "horizontal" else ("top", "bottom")
    return [replace(objects[0], position=near), replace(objects[1], position=far)], layout


def _filled(value: str | None) -> str:
    """An attribute `complete` has filled in."""
    assert value is not None, "objects reach the geometry completed"
    return value


def _geometry(objects: list[ObjectSpec], layout: str, rng: random.Random) -> tuple[list[list[float]], list[float]]:
    radii = [rng.uniform(*RADIUS_RANGE[_filled(obj.size)]) for obj in objects]
    if layout == "single":
        x, y = SINGLE_CENTRES[_filled(objects[0].position)]
        return [[x + rng.uniform(-SINGLE_JITTER, SINGLE_JITTER), y + rng.uniform(-SINGLE_JITTER, SINGLE_JITTER)]], radii
    centres = []
    for along in (PAIR_NEAR, PAIR_FAR):
        a = along + rng.uniform(-PAIR_JITTER, PAIR_JITTER)
        b = CANVAS / 2 + rng.uniform(-PAIR_CROSS_JITTER, PAIR_CROSS_JITTER)
        centres.append([a, b] if layout == "horizontal" else [b, a])
    return centres, radii


def build_scenes(filled: list[tuple[list[ObjectSpec], str]], rng: random.Random) -> Scenes:
    """Turn completed objects (from `complete`) into a Scenes batch with jittered geometry and grey backgrounds."""
    n = len(filled)
    ints = {name: torch.full((n, 2), -1, dtype=torch.long) for name in ("shape", "colour", "size", "position")}
    centre, radius = torch.zeros(n, 2, 2), torch.zeros(n, 2)
    background = torch.empty(n, 3)
    for i, (objects, layout) in enumerate(filled):
        centres, radii = _geometry(objects, layout, rng)
        for k, obj in enumerate(objects):
            ints["shape"][i, k] = SHAPES.index(obj.shape)
            ints["colour"][i, k] = COLOURS.index(obj.colour)
            ints["size"][i, k] = SIZES.index(obj.size)
            ints["position"][i, k] = POSITIONS.index(obj.position)
            centre[i, k] = torch.tensor(centres[k])
            radius[i, k] = radii[k]
        background[i] = rng.uniform(*BACKGROUND_GREY)
    return Scenes(**ints, centre=centre, radius=radius, background=background)


def sample_caption_spec(rng: random.Random, pair_probability: float = 0.5) -> CaptionSpec:
    """One caption spec from the training distribution (attributes not yet filled)."""
    if rng.random() >= pair_probability:
        mentioned = rng.choice(SINGLE_TEMPLATES)
        return CaptionSpec(
            first=ObjectSpec(
                shape=rng.choice(SHAPES) if "shape" in mentioned else None,
                colour=rng.choice(COLOURS) if "colour" in mentioned else None,
                size=rng.choice(SIZES) if "size" in mentioned else None,
                position=rng.choice(POSITIONS) if "position" in mentioned else None,
            )
        )
    first_shape, second_shape = rng.sample(SHAPES, 2)
    first_colour, second_colour = rng.sample(COLOURS, 2)

    def phrase(shape: str, colour: str) -> ObjectSpec:
        return ObjectSpec(
            shape=shape,
            colour=colour if rng.random() < 0.85 else None,
            size=rng.choice(SIZES) if rng.random() < 0.3 else None,
        )

    horizontal = rng.random() < PAIR_HORIZONTAL_PROBABILITY
    relation = (
        "and" if rng.random() < 0.15 else rng.choice(("left of", "right of") if horizontal else ("above", "below"))
    )
    return CaptionSpec(
        first=phrase(first_shape, first_colour), second=phrase(second_shape, second_colour), relation=relation
    )


def sample(n: int, seed: int, pair_probability: float = 0.5, bias: PlantedBias = SHIPPED_BIAS) -> Sample:
    """n scenes with one true caption each, deterministic in `seed` (training and held-out data)."""
    rng = random.Random(seed)
    specs = [sample_caption_spec(rng, pair_probability) for _ in range(n)]
    filled = [complete(spec, rng, bias) for spec in specs]
    return Sample(scenes=build_scenes(filled, rng), specs=specs, captions=[caption_text(s) for s in specs])


def scenes_for_caption(spec: CaptionSpec, n: int, seed: int, bias: PlantedBias = SHIPPED_BIAS) -> Scenes:
    """n scenes drawn from what a caption leaves open (with the planted bias), deterministic in `seed`."""
    rng = random.Random(seed)
    return build_scenes([complete(spec, rng, bias) for _ in range(n)], rng)
