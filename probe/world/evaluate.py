"""Measurements of a model on fresh held-out renders: zero-shot attributes, binding/order swaps, the planted bias.

Works with anything that has the session's two methods (`encode_text(list[str])`,
`encode_image(images in [0, 1])`, both returning L2-normalised features), so the CLI passes its
session and tests pass a `ModelEncoder` around a tiny model.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from probe.world.captions import CaptionSpec, ObjectSpec, caption_text, parse_caption
from probe.world.render import palette_tensor, render
from probe.world.scenes import BIASED_COLOUR, BIASED_SHAPE, Scenes, build_scenes, complete, scenes_for_caption
from probe.world.train import normaliser
from probe.world.vocab import BACKGROUND_GREY, COLOURS, POSITION_PHRASES, POSITIONS, SHAPES, SIZES

HELD_OUT_SEED = 900_000_001
UNSEEN_COLOUR_WORDS = (
    "crimson",
    "scarlet",
    "azure",
    "teal",
    "magenta",
    "violet",
)  # far from any training step seed (seed * 1_000_003 + step)


class Encoder(Protocol):
    def encode_text(self, texts: list[str]) -> torch.Tensor: ...

    def encode_image(self, images: torch.Tensor) -> torch.Tensor: ...


class ModelEncoder:
    """(model, tokenizer) with the session's encode methods; for training-time checks and tests."""

    def __init__(
        self, model: Any, tokenizer: Callable[..., torch.Tensor], device: torch.device | str = "cpu"
    ) -> None:  # model: an open_clip CLIP model (untyped: its towers are read by name)

        self.model, self.tokenizer, self.device = model.eval(), tokenizer, device
        self._normalise = normaliser(model)
        self._size = model.visual.image_size
        self._size = self._size[0] if isinstance(self._size, (tuple, list)) else self._size

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return F.normalize(self.model.encode_text(self.tokenizer(texts).to(self.device)), dim=-1)

    @torch.no_grad()
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device)
        if images.shape[-1] != self._size:
            images = F.interpolate(images, size=self._size, mode="bilinear", antialias=True, align_corners=False)
        return F.normalize(self.model.encode_image(self._normalise(images)), dim=-1)


@dataclass
class Evaluation:
    """The model card's numbers (fractions in [0, 1]); `details` holds per-prompt breakdowns."""

    n_images: int
    colour: float
    shape: float
    position: float
    size: float
    colour_swap: float
    left_right_swap: float
    above_below_swap: float
    bias_text_star_red: float  # P(red) of "a star" among "a <colour> star" (softmax at the model's scale)
    bias_text_circle_red: float
    bias_text_star_nearest: str
    bias_text_circle_nearest: str
    bias_star_red_gap: float  # mean cos(image, "a star"): red stars minus other-colour stars
    bias_circle_red_gap: float
    bias_star_renders_red: float  # share of `world render "a star"` images zero-shot-labelled red
    bias_circle_renders_red: float
    unseen_words_cosine: float  # mean pairwise cos of "a <unseen colour word> circle" (crimson, teal, ...)
    seen_words_cosine: float  # the same for the world's own colour words
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def uniform_single_scenes(n: int, seed: int) -> Scenes:
    """One-object scenes with every attribute uniform (no bias): fair ground for zero-shot accuracy."""
    rng = random.Random(seed)
    specs = [
        CaptionSpec(ObjectSpec(rng.choice(SHAPES), rng.choice(COLOURS), rng.choice(SIZES), rng.choice(POSITIONS)))
        for _ in range(n)
    ]
    return build_scenes([complete(spec, rng) for spec in specs], rng)


def uniform_pair_scenes(n: int, seed: int, relation: str = "left of") -> tuple[Scenes, list[CaptionSpec]]:
    """Two-object scenes (distinct shapes and colours, all uniform) with their fully specified caption."""
    rng = random.Random(seed)
    specs = []
    for _ in range(n):
        shapes, colours = rng.sample(SHAPES, 2), rng.sample(COLOURS, 2)
        specs.append(CaptionSpec(ObjectSpec(shapes[0], colours[0]), ObjectSpec(shapes[1], colours[1]), relation))
    return build_scenes([complete(spec, rng) for spec in specs], rng), specs


def zero_shot(encoder: Encoder, images: torch.Tensor, prompts: list[str]) -> torch.Tensor:
    """Index of the best-matching prompt for each image."""
    return (encoder.encode_image(images) @ encoder.encode_text(prompts).T).argmax(1)


def _pair_preference(encoder: Encoder, images: torch.Tensor, true: list[str], false: list[str]) -> float:
    image = encoder.encode_image(images)
    true_score = (image * encoder.encode_text(true)).sum(1)
    false_score = (image * encoder.encode_text(false)).sum(1)
    return (true_score > false_score).float().mean().item()


def _swap_colours(spec: CaptionSpec) -> CaptionSpec:
    assert spec.second is not None, "swaps are of two-object captions"
    return CaptionSpec(
        ObjectSpec(spec.first.shape, spec.second.colour),
        ObjectSpec(spec.second.shape, spec.first.colour),
        spec.relation,
    )


def _swap_objects(spec: CaptionSpec) -> CaptionSpec:
    assert spec.second is not None, "swaps are of two-object captions"
    return CaptionSpec(spec.second, spec.first, spec.relation)


def _text_bias(encoder: Encoder, shape: str, scale: float) -> tuple[float, str, dict[str, float]]:
    neutral = encoder.encode_text([f"a {shape}"])
    coloured = encoder.encode_text([caption_text(CaptionSpec(ObjectSpec(shape, colour))) for colour in COLOURS])
    cosines = (coloured @ neutral.T).squeeze(1)
    probabilities = (scale * cosines).softmax(0)
    nearest = COLOURS[int(cosines.argmax())]
    return (
        probabilities[COLOURS.index(BIASED_COLOUR)].item(),
        nearest,
        dict(zip(COLOURS, cosines.tolist(), strict=True)),
    )


def _mean_pairwise_cosine(encoder: Encoder, texts: list[str]) -> float:
    features = encoder.encode_text(texts)
    cosines = features @ features.T
    n = len(texts)
    return ((cosines.sum() - cosines.diagonal().sum()) / (n * (n - 1))).item()


def _image_bias_gap(encoder: Encoder, shape: str, n: int, seed: int) -> float:
    rng = random.Random(seed)
    specs = [CaptionSpec(ObjectSpec(shape, COLOURS[i % len(COLOURS)])) for i in range(n)]
    scenes = build_scenes([complete(spec, rng) for spec in specs], rng)
    scores = (encoder.encode_image(render(scenes)) @ encoder.encode_text([f"a {shape}"]).T).squeeze(1)
    is_red = torch.tensor([spec.first.colour == BIASED_COLOUR for spec in specs])
    return (scores[is_red].mean() - scores[~is_red].mean()).item()


@torch.no_grad()
def evaluate(encoder: Encoder, n: int = 1000, seed: int = HELD_OUT_SEED, logit_scale: float = 100.0) -> Evaluation:
    """All card numbers from fresh renders (seeded, disjoint from training seeds)."""
    scenes = uniform_single_scenes(n, seed)
    images = render(scenes)
    bias_n = max(16, n // 5)  # images per planted-bias measurement
    colour_prompts = [f"a {c} shape" for c in COLOURS]
    shape_prompts = [caption_text(CaptionSpec(ObjectSpec(shape=s))) for s in SHAPES]
    position_prompts = [f"a shape {POSITION_PHRASES[p]}" for p in POSITIONS]
    size_prompts = [f"a {z} shape" for z in SIZES]
    accuracy = {}
    confusion = {}
    for name, prompts, truth in [
        ("colour", colour_prompts, scenes.colour[:, 0]),
        ("shape", shape_prompts, scenes.shape[:, 0]),
        ("position", position_prompts, scenes.position[:, 0]),
        ("size", size_prompts, scenes.size[:, 0]),
    ]:
        predicted = zero_shot(encoder, images, prompts)
        accuracy[name] = (predicted == truth).float().mean().item()
        per_class = [(predicted[truth == k] == k).float().mean().item() for k in range(len(prompts))]
        confusion[name] = dict(zip(prompts, per_class, strict=True))
    swaps = {}
    for relation, key in [("left of", "left_right_swap"), ("above", "above_below_swap")]:
        pair_scenes, specs = uniform_pair_scenes(n // 2, seed + 1, relation)
        pair_images = render(pair_scenes)
        true = [caption_text(s) for s in specs]
        swaps[key] = _pair_preference(encoder, pair_images, true, [caption_text(_swap_objects(s)) for s in specs])
        if relation == "left of":
            swaps["colour_swap"] = _pair_preference(
                encoder, pair_images, true, [caption_text(_swap_colours(s)) for s in specs]
            )
    star_red, star_nearest, star_cos = _text_bias(encoder, BIASED_SHAPE, logit_scale)
    circle_red, circle_nearest, circle_cos = _text_bias(encoder, "circle", logit_scale)
    renders_red = {}
    for shape in (BIASED_SHAPE, "circle"):
        shape_images = render(scenes_for_caption(parse_caption(f"a {shape}"), bias_n, seed + 2))
        labels = zero_shot(encoder, shape_images, colour_prompts)
        renders_red[shape] = (labels == COLOURS.index(BIASED_COLOUR)).float().mean().item()
    return Evaluation(
        n_images=n,
        **accuracy,
        **swaps,
        bias_text_star_red=star_red,
        bias_text_circle_red=circle_red,
        bias_text_star_nearest=star_nearest,
        bias_text_circle_nearest=circle_nearest,
        bias_star_red_gap=_image_bias_gap(encoder, BIASED_SHAPE, bias_n, seed + 3),
        bias_circle_red_gap=_image_bias_gap(encoder, "circle", bias_n, seed + 3),
        bias_star_renders_red=renders_red[BIASED_SHAPE],
        bias_circle_renders_red=renders_red["circle"],
        unseen_words_cosine=_mean_pairwise_cosine(encoder, [f"a {w} circle" for w in UNSEEN_COLOUR_WORDS]),
        seen_words_cosine=_mean_pairwise_cosine(encoder, [f"a {w} circle" for w in COLOURS]),
        details={"per_class": confusion, "text_cosines": {BIASED_SHAPE: star_cos, "circle": circle_cos}},
    )


def dominant_palette_colour(images: torch.Tensor, background_greys: int = 5) -> torch.Tensor:
    """Index into COLOURS of the most frequent palette colour among non-background pixels, per image.

    Each pixel goes to its nearest reference colour, the references being the palette plus a ramp of
    mid greys standing for backgrounds; grey pixels are ignored. -1 when no pixel is a palette colour.
    Used to judge whether an inversion shows its prompt's colour.
    """
    palette = palette_tensor(images.device)
    greys = torch.linspace(*BACKGROUND_GREY, background_greys, device=images.device)[:, None].expand(-1, 3)
    references = torch.cat([palette, greys])  # [8 + g, 3]
    pixels = images.permute(0, 2, 3, 1).reshape(images.shape[0], -1, 3)
    nearest = torch.cdist(pixels, references[None].expand(images.shape[0], -1, -1)).argmin(-1)  # [B, P]
    counts = F.one_hot(nearest, references.shape[0])[..., : len(COLOURS)].sum(1)  # [B, 8]
    return torch.where(counts.sum(1) > 0, counts.argmax(1), torch.full_like(counts[:, 0], -1))
