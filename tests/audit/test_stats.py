"""Wilson score intervals: exact closed forms and textbook values."""

import dataclasses
import math

import pytest
from probe_audit.stats import Z95, Proportion, separated, wilson_interval


def test_zero_successes_has_closed_form_upper_bound():
    # k = 0: low = 0, high = z^2 / (n + z^2)
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(Z95**2 / (10 + Z95**2), abs=1e-15)
    assert high == pytest.approx(0.27753279, abs=1e-8)


def test_all_successes_mirror_zero():
    low, high = wilson_interval(20, 20)
    assert high == 1.0
    assert low == pytest.approx(20 / (20 + Z95**2), abs=1e-15)  # 0.83887...
    assert round(low, 4) == 0.8389


def test_half_is_symmetric_about_one_half():
    low, high = wilson_interval(5, 10)
    assert low + high == pytest.approx(1.0, abs=1e-15)
    half = Z95 * math.sqrt(0.25 / 10 + Z95**2 / 400) / (1 + Z95**2 / 10)
    assert high - 0.5 == pytest.approx(half, abs=1e-15)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)


def test_sixteen_of_twenty():
    low, high = wilson_interval(16, 20)
    assert (round(low, 4), round(high, 4)) == (0.5840, 0.9193)


def test_empty_sample_knows_nothing_and_bad_counts_fail():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_proportion_text_and_separation():
    star, circle = Proportion.of(16, 20), Proportion.of(2, 20)
    assert star.percent() == "80% [58–92]"
    assert circle.percent() == "10% [3–30]"
    assert separated(star, circle)
    assert not separated(Proportion.of(10, 20), Proportion.of(12, 20))
    assert Proportion.of(0, 0).percent() == "–"


def test_bounds_stay_inside_zero_and_one_where_float_rounding_spills_over():
    # unclamped, 16/16 gives an upper bound of 1 + 2e-16 and 0/21 a lower bound just below 0
    assert wilson_interval(16, 16)[1] == 1.0
    assert wilson_interval(0, 21)[0] == 0.0


@pytest.mark.parametrize("k, n", [(3, 2), (-1, 5), (-2, -1)])
def test_impossible_counts_are_refused_with_the_counts(k, n):
    with pytest.raises(ValueError, match=f"^need 0 <= successes <= n, got {k}/{n}$"):
        wilson_interval(k, n)


def test_intervals_that_touch_are_not_separated_and_proportions_are_values():
    a, b = Proportion(1, 4, 0.25, 0.1, 0.5), Proportion(3, 4, 0.75, 0.5, 0.9)
    assert not separated(a, b) and not separated(b, a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.k = 2  # type: ignore[misc]  # the refused assignment is the point: shared results stay as computed
