"""``ExplainConfig`` / ``StridesConfig``: every option checked once on construction (one-line
errors naming the option), frozen, accepted by ``run_explain`` / ``run_strides`` as ``config=``
(or as keywords, not both) and saved in the run's ``summary.json``; the explanation
throughput recorded per step."""

from __future__ import annotations

import dataclasses
import json
import math

import pandas as pd
import pytest

from kvlrp.analysis.explain.config import ExplainConfig
from kvlrp.analysis.explain.run import run_explain
from kvlrp.analysis.runs.partition import Worker
from kvlrp.analysis.strides.config import StridesConfig
from kvlrp.analysis.strides.run import run_strides

FAST_EXPLAIN = {"steps": [1], "clips_per_video": 1, "prior_seeds": 0, "n_heatmaps": 0,
                "flip_videos": 0, "n_boot": 10, "batch_size": 2, "progress": False}
FAST_STRIDES = {"steps": [1, 2], "clips_per_video": 1, "control": False, "n_boot": 10,
                "progress": False, "select_on": "test"}


@pytest.mark.parametrize("options, error, words", [
    ({"steps": [1, 0]}, ValueError, "steps must be positive ints; got [1, 0]"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive int, got 0"),
    ({"prior_seeds": -1}, ValueError, "prior_seeds must be an int >= 0, got -1"),
    ({"n_heatmaps": 1.5}, ValueError, "n_heatmaps must be an int >= 0, got 1.5"),
    ({"flip_videos": True}, ValueError, "flip_videos must be an int >= 0, got True"),
    ({"target": "truth"}, ValueError, "target must be 'predicted' or 'label', got 'truth'"),
    ({"flip_fill": "blur"}, ValueError, "flip_fill must be one of ('mean', 'zero', 'freeze')"),
    ({"crops": 2}, ValueError, "crops must be one of (1, 3); got 2"),
    ({"clips_per_video": 0}, ValueError, "clips_per_video must be a positive int or 'all'"),
    ({"temporal_sigma": -1.0}, ValueError, "temporal_sigma must be a finite number >= 0"),
    ({"n_boot": 0}, ValueError, "n_boot must be a positive int, got 0"),
    ({"seed": "0"}, ValueError, "seed must be an int, got '0'"),
    ({"split": ""}, ValueError, "split must be the name of a split"),
    ({"analyzer": "lrp.nope"}, ValueError, "unknown analyzer 'lrp.nope'; choose one of"),
    ({"analyzer": 3}, TypeError, "analyzer must be an analyzers name"),
    ({"worker": (2, 0)}, TypeError, "worker must be a kvlrp.analysis.runs.partition.Worker"),
    ({"devices": "/cpu:0"}, TypeError, "devices must be a list of device names"),
])
def test_explain_config_refuses_bad_options(options, error, words):
    with pytest.raises(error) as err:
        ExplainConfig(**options)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("options, words", [
    ({"steps": []}, "steps must be positive ints; got []"),
    ({"steps": [2, -1]}, "steps must be positive ints; got [2, -1]"),
    ({"batch_size": "8"}, "batch_size must be a positive int, got '8'"),
    ({"crops": 0}, "crops must be one of (1, 3); got 0"),
    ({"clips_per_video": "some"}, "clips_per_video must be a positive int or 'all'"),
    ({"select_on": ""}, "select_on must be the name of a split or None"),
    ({"control_seed": 1.0}, "control_seed must be an int, got 1.0"),
])
def test_strides_config_refuses_bad_options(options, words):
    with pytest.raises(ValueError) as err:
        StridesConfig(**options)
    assert words in str(err.value)


def test_configs_are_frozen_and_normalised():
    explain = ExplainConfig(steps=[4, 1], devices=["/cpu:0"])
    assert explain.steps == (4, 1) and explain.devices == ("/cpu:0",)
    assert explain.worker == Worker() and ExplainConfig(steps=[]).steps is None
    strides = StridesConfig(steps=[1, 2], clips_per_video="all")
    assert strides.steps == (1, 2) and strides.clips_per_video == "all"
    for config, name in ((explain, "steps"), (strides, "batch_size")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, name, 3)
    # dataclasses.replace checks the new value like the constructor does
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        dataclasses.replace(strides, batch_size=0)
    json.dumps(explain.as_dict()), json.dumps(strides.as_dict())  # JSON values only


def test_custom_analyzers_are_named_in_the_config():
    class GradientLike:
        def analyze(self, x, neuron_selection=None):
            return x

    def my_factory(model):
        return GradientLike()

    assert ExplainConfig(analyzer=GradientLike()).as_dict()["analyzer"] == "GradientLike"
    assert ExplainConfig(analyzer=my_factory).analyzer_name == "my_factory"


def test_config_or_keywords_not_both(small_model, synthetic_shards, tmp_path):
    model, info = small_model
    with pytest.raises(TypeError, match="not both .*steps"):
        run_explain(model, info, synthetic_shards, tmp_path, config=ExplainConfig(), steps=[1])
    with pytest.raises(TypeError, match="unknown option.* n_clips"):
        run_strides(model, info, synthetic_shards, tmp_path, n_clips=3)
    with pytest.raises(TypeError, match="config must be a StridesConfig, got ExplainConfig"):
        run_strides(model, info, synthetic_shards, tmp_path, config=ExplainConfig())
    with pytest.raises(ValueError, match="steps must be positive ints"):
        run_explain(model, info, synthetic_shards, tmp_path, steps=[0])
    assert not any(tmp_path.iterdir())  # refused before any work


def test_explain_config_saved_and_throughput_recorded(small_model, synthetic_shards,
                                                      tmp_path):
    model, info = small_model
    config = ExplainConfig(**FAST_EXPLAIN)
    summary = run_explain(model, info, synthetic_shards, tmp_path / "config", config=config)
    run_explain(model, info, synthetic_shards, tmp_path / "keywords", **FAST_EXPLAIN)
    for name in ("frame_relevance.csv", "border_scores.csv", "excluded_clips.csv"):
        assert (tmp_path / "config" / name).read_bytes() == \
            (tmp_path / "keywords" / name).read_bytes()
    saved = json.loads((tmp_path / "config" / "summary.json").read_text())
    expected = {k: v for k, v in config.as_dict().items() if k != "worker"}
    assert saved["config"] == expected and saved["config"]["steps"] == [1]
    (row,) = saved["throughput"]
    assert row["step"] == 1 and row["n_clips"] == summary["n_clips"] == 4  # 4 test videos
    for key in ("analyze_seconds", "clips_per_second", "clips_per_second_after_first_batch"):
        assert row[key] > 0 and math.isfinite(row[key]), key  # 2 batches of 2 clips
    assert "analyze()" in saved["throughput_note"]

    # a step saved before its time was recorded is reused, its throughput unknown
    state_file = tmp_path / "config" / "partial" / "explain_step1.json"
    state = json.loads(state_file.read_text())
    del state["analyze_seconds"]
    state_file.write_text(json.dumps(state))
    again = run_explain(model, info, synthetic_shards, tmp_path / "config", config=config)
    assert again["throughput"][0]["clips_per_second"] is None
    assert again["throughput"][0]["n_clips"] == 4


def test_strides_config_saved(small_model, synthetic_shards, tmp_path):
    model, info = small_model
    config = StridesConfig(**FAST_STRIDES)
    summary = run_strides(model, info, synthetic_shards, tmp_path / "config", config=config)
    run_strides(model, info, synthetic_shards, tmp_path / "keywords", **FAST_STRIDES)
    a = pd.read_csv(tmp_path / "config" / "stride_accuracy.csv")
    pd.testing.assert_frame_equal(a, pd.read_csv(tmp_path / "keywords" / "stride_accuracy.csv"))
    saved = json.loads((tmp_path / "config" / "summary.json").read_text())
    assert saved["config"] == summary["config"]
    assert saved["config"]["steps"] == [1, 2] and saved["config"]["select_on"] == "test"
    assert "worker" not in saved["config"]
