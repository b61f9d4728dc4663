"""Validation of a classifier on evaluation clips: clip and video accuracy."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf


def evaluate_clips(
    model: keras.Model, dataset: tf.data.Dataset, predict: Callable | None = None
) -> dict[str, float]:
    """Predict every clip of ``dataset`` and score clips and videos.

    Parameters
    ----------
    model
        Classifier with softmax output.
    dataset
        Batches of dicts with ``clip``, ``label`` and ``video_id`` (as
        ``kvlrp.data.clips.pipeline.eval_dataset`` yields them), not repeating.
    predict
        ``predict(clips) -> probabilities``; default :func:`make_predict` ``(model)``. Pass one
        made once when evaluating the same model repeatedly (avoids re-tracing).

    Returns
    -------
    dict
        ``loss`` (mean clip cross-entropy), ``clip_accuracy``, ``video_accuracy`` (argmax of
        the mean clip probabilities per video), ``n_clips``, ``n_videos``.
    """
    predict = predict or make_predict(model)
    probs_by_video: dict[str, list[np.ndarray]] = defaultdict(list)
    label_by_video: dict[str, int] = {}
    losses, hits = [], []
    for batch in dataset:
        probs = predict(batch["clip"]).numpy().astype("float64")
        labels = batch["label"].numpy().astype(int)
        rows = np.arange(len(labels))
        losses.append(-np.log(np.clip(probs[rows, labels], 1e-12, None)))
        hits.append(probs.argmax(axis=1) == labels)
        for vid, p, y in zip(batch["video_id"].numpy(), probs, labels):
            key = vid.decode() if isinstance(vid, bytes) else str(vid)
            probs_by_video[key].append(p)
            label_by_video[key] = int(y)
    if not losses:
        raise ValueError("evaluate_clips: the evaluation dataset yielded no clips")
    video_hits = [
        np.mean(probs_by_video[v], axis=0).argmax() == label_by_video[v] for v in probs_by_video
    ]
    return {
        "loss": float(np.concatenate(losses).mean()),
        "clip_accuracy": float(np.concatenate(hits).mean()),
        "video_accuracy": float(np.mean(video_hits)),
        "n_clips": int(sum(len(h) for h in hits)),
        "n_videos": len(video_hits),
    }


def make_predict(model: keras.Model) -> Callable:
    """A compiled inference call (outside any replica context, so it needs no collectives)."""

    @tf.function(reduce_retracing=True)
    def predict(clips):
        return model(clips, training=False)

    return predict
