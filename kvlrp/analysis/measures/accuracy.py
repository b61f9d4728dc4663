"""Stride accuracy tables: clip predictions averaged per video, accuracy with a bootstrap
interval over videos, and the choice of the best step.

Input is a per-clip table (``clip_predictions.csv``): ``step, control, video_id, label_index,
clip_index, clip_start, is_short, prob_0 .. prob_{K-1}`` where ``prob_k`` is the model's softmax
probability of class ``k`` for that clip and ``control`` is ``none`` (ordinary clips) or
``shuffled`` (the clip's frames permuted, seeded).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.bootstrap import N_BOOT, bootstrap_indices, percentile_interval
from kvlrp.analysis.runs.timing import span_seconds
from kvlrp.data.clips.spec import clip_span

#: Columns of ``stride_accuracy.csv``. ``control`` is ``none`` or ``shuffled``.
STRIDE_COLUMNS = [
    "step", "control", "span_frames", "span_seconds", "n_videos", "n_clips", "clips_per_video",
    "clip_accuracy", "video_accuracy", "ci_low", "ci_high", "mean_confidence", "n_short_clips",
]
_GROUP = ["step", "control"]


def prob_columns(clip_df: pd.DataFrame) -> list[str]:
    """The ``prob_<k>`` columns in class order."""
    cols = sorted((c for c in clip_df.columns if c.startswith("prob_")),
                  key=lambda c: int(c.split("_")[1]))
    if not cols:
        raise ValueError(f"clip table has no prob_<k> columns; has {list(clip_df.columns)}")
    return cols


def video_predictions(clip_df: pd.DataFrame) -> pd.DataFrame:
    """Average clip probabilities per video (per step and control).

    Returns
    -------
    DataFrame
        ``step, control, video_id, label_index, n_clips, predicted, confidence, correct`` and the
        averaged ``prob_<k>``; ``confidence`` is the averaged probability of the predicted class.
    """
    probs = prob_columns(clip_df)
    grouped = clip_df.groupby(_GROUP + ["video_id"], sort=True)
    videos = grouped[probs].mean()
    videos["label_index"] = grouped["label_index"].first()
    videos["n_clips"] = grouped.size()
    p = videos[probs].to_numpy()
    videos["predicted"] = p.argmax(axis=1)
    videos["confidence"] = p.max(axis=1)
    videos["correct"] = videos["predicted"] == videos["label_index"]
    return videos.reset_index()


def stride_table(
    clip_df: pd.DataFrame,
    clip_len: int,
    n_boot: int = N_BOOT,
    seed: int = 0,
    level: float = 0.95,
    fps: float | None = None,
) -> pd.DataFrame:
    """One row per (step, control): clip and video accuracy, bootstrap interval of the video
    accuracy (resampling videos), mean video confidence and the number of short clips.

    ``span_frames`` is :func:`~kvlrp.data.clips.spec.clip_span`; ``span_seconds`` is that at
    ``fps`` (NaN when ``fps`` is None: rates differ or are unknown); ``clips_per_video`` is the
    number of clips (x crops) each video was scored on, ``"4"``, or ``"2-4"`` where videos
    differ.
    """
    probs = prob_columns(clip_df)
    clip_correct = clip_df[probs].to_numpy().argmax(axis=1) == clip_df["label_index"].to_numpy()
    clips = clip_df.assign(_correct=clip_correct, _short=clip_df["is_short"].astype(bool))
    videos = video_predictions(clip_df)
    rows = []
    for (step, control), vids in videos.groupby(_GROUP, sort=True):
        in_group = (clips["step"] == step) & (clips["control"] == control)
        correct = vids["correct"].to_numpy(dtype=np.float64)
        idx = bootstrap_indices(len(correct), n_boot, seed)
        low, high = percentile_interval(correct[idx].mean(axis=1), level)
        rows.append({
            "step": int(step), "control": control,
            "span_frames": clip_span(clip_len, int(step)),
            "span_seconds": span_seconds(clip_span(clip_len, int(step)), fps),
            "n_videos": len(vids), "n_clips": int(in_group.sum()),
            "clips_per_video": _per_video(vids["n_clips"]),
            "clip_accuracy": float(clips.loc[in_group, "_correct"].mean()),
            "video_accuracy": float(correct.mean()), "ci_low": low, "ci_high": high,
            "mean_confidence": float(vids["confidence"].mean()),
            "n_short_clips": int(clips.loc[in_group, "_short"].sum()),
        })
    table = pd.DataFrame(rows, columns=STRIDE_COLUMNS)
    order = table["control"].ne("none")  # ordinary rows first, then controls
    return table.assign(_o=order).sort_values(["_o", "step"]).drop(columns="_o").reset_index(
        drop=True)


def _per_video(counts: pd.Series) -> str:
    """Clips per video of one row: ``"4"`` when every video has 4, else ``"2-4"``."""
    low, high = int(counts.min()), int(counts.max())
    return str(low) if low == high else f"{low}-{high}"


def best_step(table: pd.DataFrame, train_step: int | None = None) -> dict:
    """Pick the step with the highest video accuracy among the ordinary (``control == none``)
    rows.

    Ties: the training step if it is among the best, otherwise the smallest tied step (the
    cheapest change from training). The gain is measured against the training step's row.

    Returns
    -------
    dict
        ``best_step, best_video_accuracy, train_step, train_video_accuracy, gain`` (``gain`` and
        ``train_video_accuracy`` are None when the training step was not evaluated).
    """
    rows = table[table["control"] == "none"]
    if rows.empty:
        raise ValueError("stride table has no ordinary (control == 'none') rows")
    top = rows["video_accuracy"].max()
    tied = sorted(int(s) for s in rows.loc[rows["video_accuracy"] == top, "step"])
    best = train_step if train_step in tied else tied[0]
    train_acc = None
    if train_step is not None and (rows["step"] == train_step).any():
        train_acc = float(rows.loc[rows["step"] == train_step, "video_accuracy"].iloc[0])
    return {
        "best_step": best, "best_video_accuracy": float(top), "tied_steps": tied,
        "train_step": train_step, "train_video_accuracy": train_acc,
        "gain": None if train_acc is None else float(top) - train_acc,
    }
