"""Captions of the shapes world: structured specs, their text, parsing text back, hard negatives, truth.

A caption is held as a `CaptionSpec` so that training can compute exactly which captions are true
of which scenes (multi-positive targets) and so `world render "<caption>"` can draw what it says.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

import torch

from probe.world.vocab import COLOURS, POSITION_PHRASES, POSITIONS, SHAPES, SIZES


class CaptionError(ValueError):
    """A caption the world's grammar cannot read; the message says what is accepted."""


@dataclass(frozen=True)
class ObjectSpec:
    """What a caption says about one object; None means the caption leaves it open."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None
    position: str | None = None


# Relations as written; the first two/three put the first-named object left/top.
ORDERED_RELATIONS: dict[str, tuple[str, bool]] = {
    # relation -> (layout, first-named object is scene object 0)
    "left of": ("horizontal", True),
    "right of": ("horizontal", False),
    "above": ("vertical", True),
    "below": ("vertical", False),
}


@dataclass(frozen=True)
class CaptionSpec:
    """One caption: a single object, or two objects joined by a relation ("left of", ..., "and")."""

    first: ObjectSpec
    second: ObjectSpec | None = None
    relation: str | None = None

    @property
    def is_pair(self) -> bool:
        return self.second is not None


def object_phrase(obj: ObjectSpec) -> str:
    """'a big red circle on the left': size, colour, shape word, then the position phrase."""
    words = []
    if obj.size:
        words.append(obj.size)
    if obj.colour:
        words.append(obj.colour)
    words.append(obj.shape or "shape")
    if obj.position:
        words.append(POSITION_PHRASES[obj.position])
    article = "an" if words[0][0] in "aeiou" else "a"
    return " ".join([article, *words])


def caption_text(spec: CaptionSpec) -> str:
    """The canonical text of a caption spec."""
    if spec.second is None:
        return object_phrase(spec.first)
    return f"{object_phrase(spec.first)} {spec.relation} {object_phrase(spec.second)}"


_SYNONYMS = {"large": "big", "tiny": "small", "little": "small", "object": "shape", "thing": "shape"}
_POSITION_PATTERNS = [
    (re.compile(r"\s+(?:on|at|to) the left$"), "left"),
    (re.compile(r"\s+(?:on|at|to) the right$"), "right"),
    (re.compile(r"\s+(?:at|on) the top$"), "top"),
    (re.compile(r"\s+(?:at|on) the bottom$"), "bottom"),
    (re.compile(r"\s+in the (?:center|centre|middle)$"), "center"),
]
_RELATION_PATTERN = re.compile(r"^(.+?)\s+(?:to the\s+)?(left of|right of|above|below|and)\s+(.+)$")


def _parse_object(text: str) -> ObjectSpec:
    position = None
    for pattern, name in _POSITION_PATTERNS:
        if pattern.search(text):
            position, text = name, pattern.sub("", text)
            break
    words = text.split()
    if words and words[0] in ("a", "an", "the", "one"):
        words = words[1:]
    shape = colour = size = None
    saw_noun = False
    for word in words:
        word = _SYNONYMS.get(word, word)
        if word.endswith("s") and word[:-1] in SHAPES:
            word = word[:-1]
        if word in SIZES and size is None:
            size = word
        elif word in COLOURS and colour is None:
            colour = word
        elif word in SHAPES and not saw_noun:
            shape, saw_noun = word, True
        elif word == "shape" and not saw_noun:
            saw_noun = True
        else:
            raise CaptionError(
                f"unknown or repeated word {word!r} in {text!r}; use 'a [small|big] [colour] <shape> "
                f"[on the left|...]' with colours {', '.join(COLOURS)} and shapes {', '.join(SHAPES)}"
            )
    if not saw_noun:
        raise CaptionError(f"no shape in {text!r}; name one of {', '.join(SHAPES)} (or say 'shape')")
    return ObjectSpec(shape=shape, colour=colour, size=size, position=position)


def parse_caption(text: str) -> CaptionSpec:
    """Read a caption of the world's grammar back into a spec; raises CaptionError saying what is accepted."""
    clean = " ".join(text.lower().replace(",", " ").strip().rstrip(".").split())
    if not clean:
        raise CaptionError("empty caption; try 'a red circle left of a blue square'")
    match = _RELATION_PATTERN.match(clean)
    if match is None:
        return CaptionSpec(first=_parse_object(clean))
    first, relation, second = (_parse_object(match.group(1)), match.group(2), _parse_object(match.group(3)))
    if first.position or second.position:
        raise CaptionError("positions ('on the left') are for one-object captions; two objects use the relation")
    return CaptionSpec(first=first, second=second, relation=relation)


def _other(values: tuple[str, ...], current: str, rng: random.Random) -> str:
    return rng.choice([value for value in values if value != current])


def swap_colours(spec: CaptionSpec) -> CaptionSpec | None:
    """'a red circle left of a green star' -> 'a green circle left of a red star' (None if it cannot differ)."""
    if spec.second is None or not spec.first.colour or not spec.second.colour:
        return None
    if spec.first.colour == spec.second.colour:
        return None
    return replace(
        spec,
        first=replace(spec.first, colour=spec.second.colour),
        second=replace(spec.second, colour=spec.first.colour),
    )


def swap_relation(spec: CaptionSpec) -> CaptionSpec | None:
    """'A left of B' -> 'B left of A': same words, opposite layout (None for 'and' or one object)."""
    if spec.second is None or spec.relation not in ORDERED_RELATIONS or spec.first == spec.second:
        return None
    return replace(spec, first=spec.second, second=spec.first)


def _change_attribute(obj: ObjectSpec, rng: random.Random) -> ObjectSpec:
    options = [("shape", SHAPES, 2), ("colour", COLOURS, 1), ("size", SIZES, 1), ("position", POSITIONS, 1)]
    options = [(name, values, weight) for name, values, weight in options if getattr(obj, name)]
    name, values, _ = rng.choices(options, weights=[weight for *_, weight in options])[0]
    return replace(obj, **{name: _other(values, getattr(obj, name), rng)})


def hard_negative(spec: CaptionSpec, rng: random.Random) -> CaptionSpec:
    """A caption differing from `spec` in one thing (colour binding, relation order or one attribute), NegCLIP-style."""
    if spec.second is not None:
        choice = rng.random()
        if choice < 0.2 and (swapped := swap_colours(spec)) is not None:
            return swapped
        if choice < 0.8 and (swapped := swap_relation(spec)) is not None:
            return swapped
        if rng.random() < 0.5:
            return replace(spec, first=_change_attribute(spec.first, rng))
        return replace(spec, second=_change_attribute(spec.second, rng))
    return replace(spec, first=_change_attribute(spec.first, rng))


def _index(values: tuple[str, ...], value: str | None) -> int:
    return -1 if value is None else values.index(value)


def _object_code(obj: ObjectSpec) -> list[int]:
    return [
        _index(SHAPES, obj.shape),
        _index(COLOURS, obj.colour),
        _index(SIZES, obj.size),
        _index(POSITIONS, obj.position),
    ]


def caption_codes(specs: list[CaptionSpec]) -> torch.Tensor:
    """Int codes [C, 10]: kind (1 single, 2 ordered pair, 3 'and'), object A (s,c,z,p), B (s,c,z,p), layout.

    Ordered pairs are stored in scene order: A is the left/top object. -1 means unconstrained.
    """
    rows = []
    for spec in specs:
        if spec.second is None:
            rows.append([1, *_object_code(spec.first), -1, -1, -1, -1, -1])
        elif spec.relation in ORDERED_RELATIONS:
            layout, first_is_a = ORDERED_RELATIONS[spec.relation]
            a, b = (spec.first, spec.second) if first_is_a else (spec.second, spec.first)
            rows.append([2, *_object_code(a), *_object_code(b), 0 if layout == "horizontal" else 1])
        else:
            rows.append([3, *_object_code(spec.first), *_object_code(spec.second), -1])
    return torch.tensor(rows, dtype=torch.long).reshape(-1, 10)


def match_matrix(captions: torch.Tensor, scenes: torch.Tensor) -> torch.Tensor:
    """Bool [C, S]: is caption c true of scene s? `captions` from caption_codes, `scenes` from Scenes.codes()."""
    cap = captions[:, None, :]
    scn = scenes[None, :, :]

    def fits(cap_attrs: torch.Tensor, scene_attrs: torch.Tensor) -> torch.Tensor:
        return ((cap_attrs == -1) | (cap_attrs == scene_attrs)).all(-1)

    kind = cap[..., 0]
    is_pair_scene = scn[..., 4] >= 0
    a, b = cap[..., 1:5], cap[..., 5:9]
    obj0, obj1 = scn[..., 0:4], scn[..., 4:8]
    # Pair captions carry no per-object position; compare shape, colour, size only.
    single = (kind == 1) & ~is_pair_scene & fits(a, obj0)
    layout_ok = torch.where(
        cap[..., 9] == 0, scn[..., 3] == POSITIONS.index("left"), scn[..., 3] == POSITIONS.index("top")
    )
    in_order = fits(a[..., :3], obj0[..., :3]) & fits(b[..., :3], obj1[..., :3])
    reversed_order = fits(a[..., :3], obj1[..., :3]) & fits(b[..., :3], obj0[..., :3])
    ordered = (kind == 2) & is_pair_scene & layout_ok & in_order
    unordered = (kind == 3) & is_pair_scene & (in_order | reversed_order)
    return single | ordered | unordered
