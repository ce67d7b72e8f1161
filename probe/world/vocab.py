"""Words of the shapes world: attribute values, palette and the vocabulary for `probe neighbours`.

Torch-free so the CLI and other plugins can list the vocabulary cheaply.
"""

from __future__ import annotations

import re

from probe.models.specs import BUILTIN_MODELS

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
COLOURS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black")
SIZES: tuple[str, ...] = ("small", "big")
POSITIONS: tuple[str, ...] = ("left", "right", "top", "bottom", "center")
RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below", "and")

# RGB in [0, 1]; chosen far apart so "most frequent palette colour" is unambiguous.
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.90, 0.10, 0.10),
    "green": (0.10, 0.70, 0.15),
    "blue": (0.10, 0.20, 0.90),
    "yellow": (0.95, 0.90, 0.10),
    "purple": (0.60, 0.15, 0.75),
    "orange": (1.00, 0.55, 0.00),
    "white": (0.97, 0.97, 0.97),
    "black": (0.05, 0.05, 0.05),
}

# Backgrounds are greys in this range: never a palette colour.
BACKGROUND_GREY: tuple[float, float] = (0.35, 0.65)

# Phrase used in captions for each position (single-object scenes).
POSITION_PHRASES: dict[str, str] = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "center": "in the center",
}

FUNCTION_WORDS: tuple[str, ...] = ("a", "shape", "on", "the", "at", "in", "of", "and", "above", "below")


def world_vocabulary() -> list[str]:
    """Every content word the world's captions use, in a stable order (the default for neighbours)."""
    words = [*COLOURS, *SHAPES, *SIZES, *POSITIONS, "shape", "above", "below"]
    return list(dict.fromkeys(words))


#: Every word the world's captions (and so the built-in model's training text) contain.
CAPTION_WORDS: frozenset[str] = frozenset(
    [*COLOURS, *SHAPES, *SIZES, *POSITIONS, *FUNCTION_WORDS, "an", "left", "right", "of"]
    + [w for phrase in POSITION_PHRASES.values() for w in phrase.split()]
)


def unknown_words(text: str) -> list[str]:
    """Words of `text` that no caption of the world contains, in order, once each (lower-cased)."""
    return list(dict.fromkeys(w for w in re.findall(r"[a-z]+", text.lower()) if w not in CAPTION_WORDS))


NOTE_TEXTS = 10
"""Texts given a note of their own; the rest are counted in one more note (a file of prompts
must not flood the terminal)."""


def shown(text: str, limit: int) -> str:
    """`text` as a note quotes it: repr'd, cut to `limit` characters with an ellipsis, so a huge
    prompt is never echoed whole."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def builtin_text_notes(model: str, texts: list[str]) -> list[str]:
    """A note per text with words the built-in model never saw; empty for any other model. Its
    answers for such words are noise, and users should not read them as a finding."""
    if model not in BUILTIN_MODELS:
        return []
    notes = []
    for text in dict.fromkeys(texts):
        words = unknown_words(text)
        if words:
            notes.append(
                f"{model} knows only its shapes world's words; {', '.join(shown(w, 30) for w in words[:6])} in "
                f"{shown(text, 80)} means nothing to it (use a real CLIP with -m for these)"
            )
    if len(notes) > NOTE_TEXTS:
        more = len(notes) - NOTE_TEXTS
        notes = [
            *notes[:NOTE_TEXTS],
            f"{model} never saw words of {more} more of these texts (use a real CLIP with -m)",
        ]
    return notes
