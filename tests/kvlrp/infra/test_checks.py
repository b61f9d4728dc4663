"""kvlrp.infra.checks: the one 'positive int' / 'positive int or all' check behind the training,
explain, strides and clip settings, raising the caller's error class."""

from __future__ import annotations

import numpy as np
import pytest

from kvlrp.analysis import ExplainConfig, StridesConfig
from kvlrp.infra.checks import check_positive, check_positive_or_all, is_int
from kvlrp.training import TrainConfig, TrainingSetupError


def test_bools_floats_and_strings_are_not_ints():
    assert is_int(3) and is_int(np.int64(3)) and is_int(-1)
    assert not any(is_int(v) for v in (True, False, 3.0, "3", None, np.float32(3)))


@pytest.mark.parametrize("bad", [0, -2, True, 2.0, "3", "ALL", None])
def test_bad_values_name_the_field_and_what_is_right(bad):
    with pytest.raises(ValueError) as caught:
        check_positive_or_all("val_clips", bad)
    assert str(caught.value) == f"val_clips must be a positive int or 'all', got {bad!r}"
    with pytest.raises(ValueError) as caught:
        check_positive("batch_size", bad)
    assert str(caught.value) == f"batch_size must be a positive int, got {bad!r}"


def test_good_values_come_back_as_plain_ints_or_all():
    assert check_positive_or_all("n", "all") == "all"
    for value in (1, np.int32(5)):
        for check in (check_positive, check_positive_or_all):
            out = check("n", value)
            assert out == int(value) and type(out) is int


def test_the_error_class_is_the_callers():
    class SetupError(ValueError):
        pass

    with pytest.raises(SetupError, match="val_clips must be a positive int or 'all', got 0"):
        check_positive_or_all("val_clips", 0, error=SetupError)
    with pytest.raises(TrainingSetupError, match="val_clips must be"):
        TrainConfig("shards", "out", val_clips=0)
    for config in (ExplainConfig, StridesConfig):
        with pytest.raises(ValueError, match="clips_per_video must be a positive int or 'all', "
                                             "got False"):
            config(clips_per_video=False)
        assert config(clips_per_video=np.int64(2)).clips_per_video == 2
