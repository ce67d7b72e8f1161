"""Words of the shapes world: attribute values, palette and the vocabulary for `probe neighbours`.

Torch-free so the CLI and other plugins can list the vocabulary cheaply.
"""

from __future__ import annotations

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
