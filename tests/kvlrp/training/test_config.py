"""TrainConfig: one frozen set of training settings, checked once, recorded in kvlrp.json;
train(config=...) and the per-epoch training throughput (``clips_per_second``)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from kvlrp.data.clips.spec import ClipSpec
from kvlrp.training import TrainConfig, TrainingSetupError, train
from kvlrp.training.config import RESUME_KEYS

#: A tiny c3d_small run (trains in seconds on a CPU).
TINY = {"batch_size": 4, "epochs": 2, "steps_per_epoch": 2, "seed": 1,
        "model_kwargs": {"widths": (4, 8), "dense_units": 8}}
CLIP = ClipSpec(clip_len=4, size=16)


@pytest.mark.parametrize("keywords, words", [
    ({"epochs": 0}, "epochs must be an int >= 1, got 0"),
    ({"batch_size": 2.5}, "batch_size must be an int >= 1, got 2.5"),
    ({"steps_per_epoch": 0}, "steps_per_epoch must be an int >= 1 or None, got 0"),
    ({"learning_rate": 0.0}, "learning_rate must be a finite number > 0, got 0.0"),
    ({"learning_rate": math.inf}, "learning_rate must be a finite number > 0, got inf"),
    ({"seed": "one"}, "seed must be an int or None, got 'one'"),
    ({"clip_len": 0}, "clip_len must be an int in 1..1024, got 0"),
    ({"clip_len": 2000}, "clip_len must be an int in 1..1024, got 2000"),
    ({"step": True}, "step must be an int >= 1, got True"),
    ({"size": 4000}, "size must be an int in 1..2160, got 4000"),
    ({"normalization": "zscore"}, "unknown normalization 'zscore'"),
    ({"short_policy": "pad"}, "unknown short_policy 'pad'"),
    ({"val_clips": 0}, "val_clips must be a positive int or 'all', got 0"),
    ({"val_clips": "most"}, "val_clips must be a positive int or 'all', got 'most'"),
    ({"model": "c4d"}, "unknown architecture 'c4d'; available: "),
    ({"strategy": "tpu"}, "unknown strategy 'tpu'; use one of"),
    ({"frames": 6}, "model argument frames=6 contradicts the clip settings (clip_len=8"),
    ({"model": "c3d", "input_shape": (16, 112, 112, 3)},
     "model argument input_shape=(16, 112, 112, 3) contradicts the clip settings (8, 56, 56, 3)"),
])
def test_bad_settings_are_refused_with_what_to_fix(keywords, words, tmp_path):
    with pytest.raises(TrainingSetupError) as caught:
        TrainConfig.from_keywords(tmp_path / "shards", tmp_path / "out", **keywords)
    assert words in str(caught.value)
    # train() refuses them the same way, before anything is read or written
    with pytest.raises(TrainingSetupError, match="must be|unknown|contradicts"):
        train(tmp_path / "missing", tmp_path / "out", **keywords)
    assert not (tmp_path / "out").exists()


def test_a_clip_spec_given_directly_is_checked_too(tmp_path):
    with pytest.raises(TrainingSetupError, match="size must be an int in 1..2160, got 3000"):
        TrainConfig(tmp_path, tmp_path / "out", clip=ClipSpec(size=3000))


def test_config_is_frozen_and_its_model_kwargs_read_only(tmp_path):
    config = TrainConfig(tmp_path, tmp_path / "out", model_kwargs={"widths": (4, 8)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    with pytest.raises(TypeError):
        config.model_kwargs["widths"] = (2, 2)
    other = dataclasses.replace(config, clip=CLIP, seed=None)
    assert (other.clip.clip_len, other.seed, config.clip.clip_len) == (4, None, 8)
    assert other.determinism is False and config.determinism is True


def test_clip_settings_come_from_the_clip_spec_only(tmp_path):
    config = TrainConfig.from_keywords(tmp_path, tmp_path / "out", clip_len=4, step=2, size=16,
                                       normalization="unit", short_policy="skip", widths=(4, 8))
    assert config.clip == ClipSpec(clip_len=4, step=2, size=16, normalization="unit",
                                   short_policy="skip")
    assert dict(config.model_kwargs) == {"widths": (4, 8)}
    settings = config.resume_settings(["a", "b"])
    assert tuple(settings) == RESUME_KEYS
    assert {k: settings[k] for k in ("clip_len", "step", "size", "normalization",
                                     "short_policy")} == {
        "clip_len": 4, "step": 2, "size": 16, "normalization": "unit", "short_policy": "skip"}
    # the clip's shape reaches the builder through builder_kwargs, not model_kwargs
    assert settings["model_kwargs"] == {"widths": [4, 8], "frames": 4, "size": 16}


def test_dict_round_trip_is_json(tmp_path):
    config = TrainConfig(str(tmp_path), tmp_path / "out", clip=CLIP, strategy="mirrored",
                         val_clips="all", **TINY)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["out_dir"] == str(tmp_path / "out") and data["clip"]["clip_len"] == 4
    again = TrainConfig.from_dict(data)
    assert again.to_dict() == config.to_dict()
    assert again.clip == config.clip and again.strategy == "mirrored"


def test_train_takes_folders_and_options_or_one_config(tmp_path):
    import inspect

    assert list(inspect.signature(train).parameters) == [
        "shard_dir", "out_dir", "config", "progress", "callbacks", "options"]
    config = TrainConfig(tmp_path, tmp_path / "out")
    with pytest.raises(TypeError, match="needs shard_dir and out_dir"):
        train(epochs=1)
    with pytest.raises(TypeError, match=r"\['shard_dir', 'out_dir'\] were given too"):
        train(tmp_path, tmp_path / "out", config)
    with pytest.raises(TypeError, match="config must be a TrainConfig, got dict"):
        train(config={"epochs": 1})
    assert not (tmp_path / "out").exists()


def test_train_takes_a_config_and_records_it_with_its_throughput(synthetic_shards, tmp_path):
    import pandas as pd

    from kvlrp.models import load_model

    config = TrainConfig(synthetic_shards, tmp_path / "m", clip=CLIP, val_clips=1, **TINY)
    with pytest.raises(TypeError, match=r"\['epochs', 'widths'\] were given too"):
        train(config=config, epochs=3, widths=(2, 2))
    result = train(config=config, progress=False)
    history = pd.read_csv(tmp_path / "m" / "history.csv")
    rates = history["clips_per_second"]
    assert len(rates) == 2 and (rates > 0).all() and rates.map(math.isfinite).all()
    _, info = load_model(tmp_path / "m")
    assert TrainConfig.from_dict(info.extra["config"]).to_dict() == config.to_dict()
    assert info.clip_spec() == CLIP and info.model_kwargs["widths"] == [4, 8]
    overall = info.extra["clips_per_second"]
    assert math.isfinite(overall)
    assert rates.min() * (1 - 1e-9) <= overall <= rates.max() * (1 + 1e-9)  # harmonic mean
    assert result.info.extra["config"] == info.extra["config"]
    # a finished run called again trains nothing: no throughput to report
    again = train(config=config, progress=False)
    assert again.initial_epoch == 2 and again.info.extra["clips_per_second"] is None
