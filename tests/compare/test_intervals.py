"""Newcombe's hybrid score interval for a difference of independent proportions (method 10 of
Newcombe 1998), checked against values computed by hand, and the Difference that marks a real one.

Hand computation of Newcombe's example 56/70 vs 48/80 (z = 1.959964, z² = 3.841459):

    p1 = 0.8:  Wilson centre = (0.8 + z²/140) / (1 + z²/70) = 0.827439 / 1.054878 = 0.784393
               half = z · sqrt(0.16/70 + z²/19600) / 1.054878 = z · sqrt(0.0024817) / 1.054878 = 0.092560
               l1 = 0.691833, u1 = 0.876953
    p2 = 0.6:  Wilson centre = (0.6 + z²/160) / (1 + z²/80) = 0.624009 / 1.048018 = 0.595418
               half = z · sqrt(0.24/80 + z²/25600) / 1.048018 = z · sqrt(0.0031501) / 1.048018 = 0.104963
               l2 = 0.490455, u2 = 0.700381
    d = 0.2;   L = d − sqrt((p1 − l1)² + (u2 − p2)²) = 0.2 − sqrt(0.011700 + 0.010076) = 0.2 − 0.147567 = 0.052433
               U = d + sqrt((u1 − p1)² + (p2 − l2)²) = 0.2 + sqrt(0.005922 + 0.012000) = 0.2 + 0.133873 = 0.333873

Newcombe 1998 (table II, method 10) prints 0.0524 to 0.3339.

10/10 vs 0/20 (a share at each boundary): l1 = 10 / (10 + z²) = 0.722467, u1 = 1; l2 = 0,
u2 = z² / (20 + z²) = 0.161124; L = 1 − sqrt(0.277533² + 0.161124²) = 1 − 0.320914 = 0.679086, U = 1.
"""

import pytest

from probe.plugin import Difference, Proportion, newcombe_interval, wilson_interval


def test_wilson_matches_the_hand_computed_interval():
    assert wilson_interval(56, 70) == pytest.approx((0.691833, 0.876953), abs=2e-6)
    assert wilson_interval(48, 80) == pytest.approx((0.490455, 0.700381), abs=2e-6)


def test_newcombe_matches_newcombe_1998s_worked_example():
    low, high = newcombe_interval(56, 70, 48, 80)
    assert low == pytest.approx(0.0524, abs=5e-5) and high == pytest.approx(0.3339, abs=5e-5)
    assert (low, high) == pytest.approx((0.052433, 0.333873), abs=5e-6)


def test_newcombe_at_the_boundaries_of_small_samples():
    """10/10 vs 0/20 (hand-computed above; a Wald interval would be [1, 1], no uncertainty at all)."""
    low, high = newcombe_interval(10, 10, 0, 20)
    assert low == pytest.approx(0.679086, abs=2e-6) and high == pytest.approx(1.0, abs=1e-9)
    # swapping the samples mirrors the interval
    assert newcombe_interval(0, 20, 10, 10) == pytest.approx((-high, -low), abs=1e-12)
    # no data in a sample: nothing is known
    assert newcombe_interval(3, 10, 0, 0) == (-1.0, 1.0)


def test_difference_marks_only_intervals_that_exclude_zero():
    real = Difference.of(Proportion.of(56, 70), Proportion.of(48, 80))
    assert real.excludes_zero and real.points() == "+20 [+5, +33]"
    same = Difference.of(Proportion.of(5, 10), Proportion.of(5, 10))
    assert not same.excludes_zero and same.low < 0 < same.high
    lower = Difference.of(Proportion.of(48, 80), Proportion.of(56, 70))
    assert lower.excludes_zero and lower.high < 0
    assert Difference.of(Proportion.of(1, 2), Proportion.of(0, 0)).points() == "–"
