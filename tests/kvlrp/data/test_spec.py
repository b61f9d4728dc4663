"""The clip specification owns every clip rule: the crops choices and default, the span, the
short-video policies and their checks; the run configs and the command line take them from it."""

from __future__ import annotations

import dataclasses

import pytest

from kvlrp.analysis.explain.config import ExplainConfig
from kvlrp.analysis.strides.config import StridesConfig
from kvlrp.cli import build_parser
from kvlrp.data.clips import clip_sampling
from kvlrp.data.clips.spec import (
    CROPS,
    DEFAULT_CROPS,
    SHORT_POLICIES,
    ClipSpec,
    check_crops,
    check_short_policy,
    check_trainable,
    clip_span,
)


def test_span_is_one_formula_for_ints_and_the_reference():
    assert [clip_span(8, s) for s in (1, 2, 3)] == [8, 15, 22]
    assert clip_span(1, 5) == 1
    assert ClipSpec(clip_len=8, step=3).span == 22 == clip_sampling.span(8, 3)


def test_crops_rule_and_default_come_from_the_spec():
    assert CROPS == (1, 3) and DEFAULT_CROPS in CROPS
    assert ClipSpec().crops == ExplainConfig().crops == StridesConfig().crops == DEFAULT_CROPS
    for crops in CROPS:
        assert check_crops(crops) == crops
    with pytest.raises(ValueError, match=r"ClipSpec.crops must be one of \(1, 3\); got 2"):
        ClipSpec(crops=2)
    with pytest.raises(ValueError, match=r"crops must be one of \(1, 3\); got 2"):
        StridesConfig(crops=2)


def test_command_line_crops_are_the_specs():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name in ("explain", "strides"):
        crops = next(a for a in commands[name]._actions if a.dest == "crops")
        assert tuple(crops.choices) == CROPS and crops.default == DEFAULT_CROPS
    policy = next(a for a in commands["train"]._actions if a.dest == "short_policy")
    assert tuple(policy.choices) == SHORT_POLICIES


def test_short_policy_and_training_bounds_are_checked_in_one_place():
    assert check_short_policy("skip") == "skip"
    with pytest.raises(ValueError, match="unknown short_policy 'pad'"):
        ClipSpec(short_policy="pad")
    with pytest.raises(ValueError, match="unknown short-video policy 'wrap'"):
        clip_sampling.clip_indices(10, 0, 4, 1, "wrap")
    check_trainable(8, 1, 56)
    with pytest.raises(ValueError, match=r"size must be an int in 1\.\.2160, got 3000"):
        check_trainable(8, 1, 3000)
    with pytest.raises(ValueError, match="step must be an int >= 1, got True"):
        check_trainable(8, True, 56)


def test_spec_is_frozen_and_normalises_numpy_ints():
    np = pytest.importorskip("numpy")
    spec = ClipSpec(clip_len=np.int64(4), size=16)
    assert type(spec.clip_len) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.step = 2  # type: ignore[misc]
