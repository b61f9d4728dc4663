"""benchmarks/_interleave.py: round orders and paired ratios (no timing asserted)."""

from __future__ import annotations

import sys

import pytest
from repo_paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from _interleave import paired_ratios, round_orders, summarize  # noqa: E402


def test_round_orders_rotate_and_call_each_method_once_per_round():
    orders = round_orders(["gradient", "a", "b"], 4)
    assert orders == [["gradient", "a", "b"], ["a", "b", "gradient"],
                      ["b", "gradient", "a"], ["gradient", "a", "b"]]
    firsts = {order[0] for order in orders[:3]}
    assert firsts == {"gradient", "a", "b"}


@pytest.mark.parametrize("methods, repeats, word", [
    ([], 3, "empty"), (["a", "a"], 2, "twice"), (["a"], 0, "repeats")])
def test_round_orders_refuses_bad_input(methods, repeats, word):
    with pytest.raises(ValueError, match=word):
        round_orders(methods, repeats)


def test_paired_ratios_divide_round_by_round():
    assert paired_ratios([2.0, 3.0, 9.0], [1.0, 2.0, 3.0]) == [2.0, 1.5, 3.0]
    with pytest.raises(ValueError, match="per round"):
        paired_ratios([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="> 0"):
        paired_ratios([1.0], [0.0])


def test_summarize_with_and_without_baseline():
    plain = summarize([3.0, 1.0, 2.0])
    assert plain["median_s"] == 2.0 and plain["min_s"] == 1.0 and plain["max_s"] == 3.0
    assert "median_paired_ratio" not in plain
    # a load spike in round 2 hits both: the paired ratio sees through it, medians less so
    rel = summarize([1.5, 6.0, 1.5], baseline=[1.0, 4.0, 1.0])
    assert rel["paired_ratios"] == [1.5, 1.5, 1.5]
    assert rel["median_paired_ratio"] == 1.5
    assert rel["ratio_of_medians"] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="empty"):
        summarize([])
