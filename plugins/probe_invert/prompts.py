"""Prompt syntax: weighted blends ("a panda | a mad scientist:0.5 | blurry:-0.3"), prompt files, seed ranges."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from probe.plugin import ConfigError, UsageError

_NUMBERISH = re.compile(r"^[-+0-9.eE]+$")


@dataclass(frozen=True)
class WeightedPrompt:
    """A prompt as the user wrote it, and its (text, weight) parts."""

    text: str
    parts: tuple[tuple[str, float], ...]


def _split_weight(part: str, prompt: str) -> tuple[str, float]:
    """'a cat:0.5' -> ('a cat', 0.5); a colon followed by words ('time: noon') is just text."""
    head, colon, tail = part.rpartition(":")
    if not colon:
        return part, 1.0
    tail = tail.strip()
    if not tail:
        raise UsageError(f"missing weight after ':' in {prompt!r}", hint="write PROMPT:NUMBER, e.g. 'a cat:0.5'")
    if " " in tail or not _NUMBERISH.match(tail):
        return part, 1.0
    try:
        weight = float(tail)
    except ValueError:
        raise UsageError(f"bad weight {tail!r} in {prompt!r}", hint="write PROMPT:NUMBER, e.g. 'a cat:0.5'") from None
    if not math.isfinite(weight):
        raise UsageError(f"bad weight {tail!r} in {prompt!r}", hint="weights must be finite numbers")
    return head.strip(), weight


def parse_prompt(prompt: str) -> WeightedPrompt:
    """Split on '|' into weighted parts; every part non-empty, weights non-zero, at least one positive."""
    from probe.plugin import check_prompts

    check_prompts([prompt])
    parts = []
    for raw in prompt.split("|"):
        raw = raw.strip()
        if not raw:
            raise UsageError(f"empty part in {prompt!r}", hint="remove the extra '|'")
        text, weight = _split_weight(raw, prompt)
        if not text:
            raise UsageError(f"weight without text in {prompt!r}", hint="write PROMPT:NUMBER, e.g. 'a cat:0.5'")
        if weight == 0:
            raise UsageError(
                f"zero weight for {text!r} in {prompt!r}", hint="drop the part, or give it a non-zero weight"
            )
        parts.append((text, weight))
    if not any(w > 0 for _, w in parts):
        raise UsageError(f"no positive part in {prompt!r}", hint="at least one part needs a positive weight")
    return WeightedPrompt(prompt, tuple(parts))


def parse_seeds(text: str) -> list[int]:
    """'0-7', '3', '0-3,10,12-13' -> seeds in the given order, without repeats (the experiment files' parser)."""
    from probe.plugin import parse_seeds as parse

    try:
        return parse(text)
    except ValueError as exc:
        raise UsageError(f"bad --seeds {text!r}: {exc}") from None


def read_prompts_file(path: Path) -> list[str]:
    """One prompt per line; blank lines and lines starting with '#' are skipped; each line is checked."""
    from probe.plugin import check_regular_file

    check_regular_file(Path(path), "prompts file", ConfigError)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"prompts file not found: {path}") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    from probe.plugin import refuse_nul

    refuse_nul(path, text, ConfigError)
    prompts = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            parse_prompt(line)
        except UsageError as exc:
            raise ConfigError(f"{path}:{number}: {exc}") from None
        prompts.append(line)
    if not prompts:
        raise ConfigError(f"{path}: no prompts (one per line; '#' starts a comment)")
    return prompts
