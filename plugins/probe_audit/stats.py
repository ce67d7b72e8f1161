"""Proportions with Wilson score intervals: honest error bars for small N (e.g. 20 inversions)."""

from __future__ import annotations

from probe.plugin import Z95, Proportion, wilson_interval

__all__ = ["Z95", "Proportion", "separated", "wilson_interval"]


def separated(a: Proportion, b: Proportion) -> bool:
    """Whether two intervals do not overlap."""
    return a.high < b.low or b.high < a.low
