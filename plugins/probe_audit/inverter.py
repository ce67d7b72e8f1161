"""The audit's bridge to the invert plugin: presets, and (prompt, seed) pairs in few batched calls."""

from __future__ import annotations

from typing import Any, Callable

from probe.errors import ProbeError


def _invert_module(name: str):
    try:
        return __import__(f"probe_invert.{name}", fromlist=["_"])
    except ImportError as exc:
        raise ProbeError("the invert plugin (probe_invert) is not available", hint="reinstall clip-probe; audits that make images need it") from exc


def load_preset(name: str, **overrides: Any):
    """InvertSettings for a preset name or YAML path, with overrides."""
    return _invert_module("settings").load_preset(name, **overrides)


def settings_from_dict(data: dict):
    """InvertSettings rebuilt from the dict stored in a run manifest."""
    return _invert_module("settings").InvertSettings(**data).validated()


def invert_pairs(session, pairs: list[tuple[str, int]], settings: dict,
                 should_stop: Callable[[], bool] | None = None) -> dict[tuple[str, int], Any]:
    """Invert each (prompt, seed) pair, all in one batched call; Inversion objects by (prompt, seed)."""
    render = _invert_module("render")
    found = render.invert_items(session, list(pairs), settings_from_dict(settings), should_stop=should_stop)
    return {(inv.prompt, inv.seed): inv for inv in found}
