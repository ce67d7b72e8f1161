"""The one domain error family: raised by library code, turned into a one-line message at the CLI edge."""

from __future__ import annotations

import sys


class ProbeError(Exception):
    """A failure the user can fix; its message says what to do. Exit code 1."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class UsageError(ProbeError):
    """Bad arguments or option values. Exit code 2, like click's own usage errors."""

    exit_code = 2


class ModelError(ProbeError):
    """A model spec that cannot be resolved or loaded."""


class ConfigError(UsageError):
    """An invalid config file or prompt/experiment file."""


class DataError(ProbeError):
    """A bad input file: vocabulary, image, sidecar."""


MAX_MESSAGE = 2000
"""Characters of an error line shown at most: a message never carries a whole file's worth of text."""


def short_repr(value: object, limit: int = 80) -> str:
    """repr(value) cut to `limit` characters, for echoing a bad value in an error."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def clipped(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` with its middle left out past `limit` characters (the start says where and what, the
    end holds the hint)."""
    if len(text) <= limit:
        return text
    keep = limit // 2
    return f"{text[:keep]} [... {len(text) - 2 * keep} characters left out ...] {text[-keep:]}"


BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def escaped(text: str, keep: str = "") -> str:
    """`text` with control characters (newlines, ESC...) and bidi overrides, except those in `keep`,
    shown as visible escapes such as \\n, \\x1b or \\u202e: an error stays one line and a path or
    prompt cannot restyle or reorder the terminal."""
    import unicodedata

    out = []
    for ch in text:
        if ch in keep or not (ch in BIDI_CONTROLS or unicodedata.category(ch) == "Cc"):
            out.append(ch)
        elif ch in "\n\r\t":
            out.append(repr(ch)[1:-1])
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
    return "".join(out)


def caller_stacklevel() -> int:
    """The `stacklevel` for a warning raised here that names the first line outside the probe package
    (and the torch.no_grad or contextlib wrappers around its functions), so a warning about a user's
    prompts points at the user's call, however deep it was raised."""

    def inside(module: str) -> bool:
        return module.split(".")[0] in ("probe", "torch", "contextlib")

    frame, level = sys._getframe(1), 1  # the function that will call warnings.warn is level 1
    while frame.f_back is not None and inside(frame.f_globals.get("__name__", "")):
        frame, level = frame.f_back, level + 1
    return level
