"""``BorderEffectCallback`` (issue 26): the border effect logged while a model trains, to
``history.csv`` and TensorBoard, through ``kvlrp train --border-every N`` and ``model.fit``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from cli_helpers import main

pytestmark = pytest.mark.slow

TINY = ["--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "4", "--clip-len", "4",
        "--size", "16", "--widths", "2", "2", "--dense-units", "4", "--seed", "3",
        "--no-progress"]
SCORES = ["loss", "accuracy", "val_loss", "val_clip_accuracy", "val_video_accuracy"]


def _events(log_dir) -> dict[str, list]:
    """TensorBoard summaries in ``log_dir``: plugin name -> [(tag, step)]."""
    import tensorflow as tf

    found: dict[str, list] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                found.setdefault(plugin, []).append((value.tag, event.step))
    return found


def test_train_logs_the_border_effect_to_history_and_tensorboard(synthetic_shards, tmp_path,
                                                                 capsys):
    out = tmp_path / "model"
    assert main(["train", "--data", str(synthetic_shards), "--out", str(out), *TINY,
                 "--border-every", "2", "--border-clips", "4"]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out
    history = pd.read_csv(out / "history.csv")
    columns = ["border_score", "border_ci_low", "border_ci_high", "relative_border_score",
               "relative_border_ci_low", "relative_border_ci_high",
               *[f"frame_share_{t}" for t in range(4)], *[f"relative_share_{t}" for t in range(4)]]
    assert set(columns) <= set(history.columns) and set(SCORES) <= set(history.columns)
    first, second = history.iloc[0], history.iloc[1]
    assert all(math.isnan(first[c]) for c in columns)  # epoch 1: not explained (every 2)
    assert all(np.isfinite(second[c]) for c in columns), second[columns]
    shares = second[[f"frame_share_{t}" for t in range(4)]].to_numpy()
    assert shares.sum() == pytest.approx(1.0)
    border = 0.5 * (shares[0] + shares[-1]) / shares[1:-1].mean()
    assert second["border_score"] == pytest.approx(border)
    relative = second[[f"relative_share_{t}" for t in range(4)]].to_numpy()
    assert relative.mean() == pytest.approx(1.0)

    events = _events(out / "logs")
    scalars = {tag for tag, step in events["scalars"]}
    assert {"border/border_score", "border/relative_border_score",
            "frame_share/frame_share_0", "relative_share/relative_share_3"} <= scalars
    assert {step for _, step in events["scalars"]} == {2}
    assert {tag for tag, _ in events["images"]} == {"border/heatmap", "border/profile"}

    # the explanations leave training as it was: same scores as a run without the callback
    plain = tmp_path / "plain"
    assert main(["train", "--data", str(synthetic_shards), "--out", str(plain), *TINY]) == 0
    pd.testing.assert_frame_equal(history[SCORES], pd.read_csv(plain / "history.csv")[SCORES])


def test_the_callback_in_keras_fit_with_a_csv_logger(synthetic_shards, tmp_path):
    import keras

    from kvlrp.analysis import BorderEffectCallback, border_clips
    from kvlrp.data.clips.spec import ClipSpec
    from kvlrp.models import c3d_small

    chosen = border_clips(synthetic_shards, ClipSpec(clip_len=4, size=16), n_clips=3)
    assert len(chosen["clips"]) == 3 and len(set(chosen["labels"])) == 3  # classes in turn
    keras.utils.set_random_seed(0)
    model = c3d_small(4, frames=4, size=16, widths=(2, 2), dense_units=4)
    model.compile("adam", "sparse_categorical_crossentropy")
    callback = BorderEffectCallback(chosen["clips"], labels=chosen["labels"],
                                    video_ids=chosen["video_ids"], prior_seeds=1)
    model.fit(chosen["clips"], chosen["labels"], epochs=2, verbose=0,
              callbacks=[callback, keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    logged = pd.read_csv(tmp_path / "log.csv")
    assert len(logged) == 2 and {"border_score", "relative_border_score",
                                 "frame_share_3"} <= set(logged.columns)
    with pytest.raises(ValueError, match="frames >= 3"):
        BorderEffectCallback(np.zeros((2, 2, 8, 8, 3)))
