"""``BorderEffectCallback``: watch the border effect appear while a model trains.

Every ``every`` epochs the callback explains a fixed set of clips with the model as it is and
measures what ``kvlrp explain`` measures, with the same functions
(:func:`~kvlrp.analysis.explain.frames.explain_frames`,
:func:`~kvlrp.analysis.measures.profiles.summarize_profiles`): the share of relevance per frame
position, the border score and, relative to the architecture's position prior (re-initialised
copies, :func:`~kvlrp.analysis.explain.frames.reinitialised_clone`, explained once when
training starts), the relative profile and relative border score. It puts them into the
epoch's logs (:data:`LOG_COLUMNS` and ``frame_share_<t>`` / ``relative_share_<t>``; NaN in the
epochs between), so ``kvlrp train`` writes them to ``history.csv`` (and Keras' ``CSVLogger``,
placed after it, to its file), and, given ``log_dir``, to TensorBoard: scalars, the profile
plot of ``kvlrp report`` and a heatmap of one clip as images.

The layers: training (``kvlrp.training``) knows nothing of explanations; this callback lives
with them in ``kvlrp.analysis`` and ``kvlrp train --border-every N`` hands it to
:func:`kvlrp.training.train` as one of its ``callbacks``.
"""

from __future__ import annotations

import io
import logging
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from kvlrp.analysis.explain.frames import (
    TARGETS,
    AnalyzerFactory,
    analyzer_factory,
    explain_frames,
    reinitialised_clone,
)
from kvlrp.analysis.explain.heatmaps import heatmap_strip
from kvlrp.analysis.explain.plan import PRIOR_SEED_OFFSET, round_robin
from kvlrp.analysis.measures.profiles import summarize_profiles
from kvlrp.analysis.report.plots import plot_profiles

logger = logging.getLogger(__name__)

__all__ = ["LOG_COLUMNS", "BorderEffectCallback", "border_clips"]

#: Scalar columns the callback adds to the logs (besides one ``frame_share_<t>`` and one
#: ``relative_share_<t>`` per frame position): the border score with its bootstrap 95 %
#: interval over the clips, raw and relative to the position prior.
LOG_COLUMNS = ("border_score", "border_ci_low", "border_ci_high", "relative_border_score",
               "relative_border_ci_low", "relative_border_ci_high")


class BorderEffectCallback(keras.callbacks.Callback):
    """Explain a fixed set of clips every ``every`` epochs; log the frame-position profile,
    the border score (raw and relative to the position prior) and a heatmap.

    Parameters
    ----------
    clips
        ``[n, frames, height, width, channels]`` float32, normalised as the model's input
        (:func:`border_clips` cuts them from a shard folder).
    every
        Explain after every ``every``-th epoch (1: each epoch).
    labels
        ``[n]`` class indices (needed for ``target="label"``; shown in the heatmap title).
    video_ids
        ``[n]`` names of the clips' videos (default ``clip0``, ``clip1``, ...).
    analyzer
        An ``analyzers`` name (default ``deep_taylor.bounded``, with ``bounds``).
    bounds
        The input normalisation's ``(low, high)``, scalars or one per channel (z^B bounds and
        the heatmap's colours), e.g. ``NORMALIZATION_BOUNDS["symmetric"]``.
    target
        ``predicted`` (explain each clip's top class) or ``label``.
    prior_seeds
        Re-initialised copies of the architecture for the position prior (0: no relative
        columns); explained once, when training starts.
    log_dir
        TensorBoard log folder (``tf.summary``, which needs the ``tensorboard`` package:
        ``pip install 'kvlrp[tensorboard]'``); None: logs only.
    step
        The step the clips were cut at (a label of the tables).
    seed, n_boot
        Prior seeds (``1000 + seed + k``, as ``kvlrp explain``) and bootstrap resamples.
    batch_size
        Clips per ``analyze`` call.
    """

    def __init__(self, clips: np.ndarray, every: int = 1, *, labels: Sequence[int] | None = None,
                 video_ids: Sequence[str] | None = None, analyzer: str = "deep_taylor.bounded",
                 bounds: Any = (-1.0, 1.0), target: str = "predicted", prior_seeds: int = 2,
                 log_dir: str | os.PathLike | None = None, step: int = 1, seed: int = 0,
                 n_boot: int = 1000, batch_size: int = 8) -> None:
        super().__init__()
        clips = np.asarray(clips, dtype=np.float32)
        if clips.ndim != 5 or len(clips) == 0 or clips.shape[1] < 3:
            raise ValueError(f"clips must be [n >= 1, frames >= 3, height, width, channels]; "
                             f"got shape {clips.shape}")
        for name, value in (("every", every), ("batch_size", batch_size), ("n_boot", n_boot)):
            if int(value) < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if target not in TARGETS or (target == "label" and labels is None):
            raise ValueError(f"target must be one of {TARGETS} (label needs labels); "
                             f"got {target!r}")
        self.clips, self.every, self.target = clips, int(every), target
        self.labels = np.zeros(len(clips), np.int64) if labels is None else np.asarray(labels)
        self.video_ids = list(video_ids or [f"clip{i}" for i in range(len(clips))])
        self.analyzer_name, self.bounds, self.step = analyzer, bounds, int(step)
        self.prior_seeds = [PRIOR_SEED_OFFSET + seed + k for k in range(int(prior_seeds))]
        self.log_dir, self.seed, self.n_boot = log_dir, seed, int(n_boot)
        self.batch_size = int(batch_size)
        self.columns = list(LOG_COLUMNS) + [f"{kind}_share_{t}" for kind in ("frame", "relative")
                                            for t in range(clips.shape[1])]
        self._factory: AnalyzerFactory | None = None
        self._analyzer: Any = None
        self._prior: Any = None
        self._writer: Any = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Build the analyzer of the model being trained (it follows the weights as they
        change) and explain the re-initialised copies once: the position prior."""
        self._factory = analyzer_factory(self.analyzer_name, self.bounds)
        self._analyzer = self._factory(self.model)
        priors = {s: self._factory(reinitialised_clone(self.model, s)) for s in self.prior_seeds}
        self._prior = (self._explain(self._analyzer, priors).prior if priors else None)
        if self.log_dir is not None:
            import tensorflow as tf

            try:
                import tensorboard  # noqa: F401 - tf.summary's scalars and images need it
            except ImportError:
                logger.warning("TensorBoard is not installed (pip install 'kvlrp[tensorboard]'):"
                               " the border effect goes to the logs only, not to %s",
                               self.log_dir)
                return
            self._writer = tf.summary.create_file_writer(str(self.log_dir))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Every ``every``-th epoch: explain, add the columns to ``logs`` and write the
        TensorBoard summaries; otherwise the columns are NaN."""
        logs = logs if logs is not None else {}
        if (epoch + 1) % self.every:
            logs.update(dict.fromkeys(self.columns, math.nan))
            return
        result = self._explain(self._analyzer, {})
        if result.frame.empty:  # every clip explained as zero relevance (e.g. logits < 0)
            logs.update(dict.fromkeys(self.columns, math.nan))
            return
        summary, borders = summarize_profiles(result.frame, self._prior, by_class=False,
                                              n_boot=self.n_boot, seed=self.seed)
        border = borders.iloc[0]
        values = {name: float(border[name]) for name in LOG_COLUMNS}
        for row in summary.itertuples():
            values[f"frame_share_{row.position}"] = float(row.mean_share)
            values[f"relative_share_{row.position}"] = float(row.relative_share)
        logs.update(values)
        if self._writer is not None:
            self._write_summaries(epoch + 1, values, summary, borders, result.kept)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()

    def _explain(self, analyzer: Any, priors: dict[int, Any]) -> Any:
        """:func:`explain_frames` of the clips (one kept for the heatmap)."""
        batches = [{"clip": self.clips[i:i + self.batch_size],
                    "label": self.labels[i:i + self.batch_size],
                    "video_id": np.asarray(self.video_ids[i:i + self.batch_size]),
                    "clip_start": np.zeros(len(self.clips[i:i + self.batch_size]), np.int64)}
                   for i in range(0, len(self.clips), self.batch_size)]
        return explain_frames(self.model, batches, analyzer, step=self.step,
                              analyzer_name=self.analyzer_name, target=self.target,
                              prior_analyzers=priors, keep=1, temporal_sigma=None)

    def _write_summaries(self, epoch: int, values: dict[str, float], summary: Any,
                         borders: Any, kept: list[dict]) -> None:
        """Scalars (``border/...``, ``frame_share/...``, ``relative_share/...``), the profile
        plot and one clip's heatmap, at step ``epoch`` (1-based)."""
        import tensorflow as tf

        with tempfile.TemporaryDirectory(prefix="kvlrp-border-") as tmp:
            images = {"border/profile": _png(plot_profiles(summary, borders,
                                                           Path(tmp) / "profile.png"))}
            if kept:
                k = kept[0]
                images["border/heatmap"] = _png(heatmap_strip(
                    k["clip"], k["relevance"], Path(tmp) / "heatmap.png", shares=k["shares"],
                    title=f"epoch {epoch}: {k['video_id']}", bounds=self.bounds))
        with self._writer.as_default(step=epoch):
            for name, value in values.items():
                group = "border" if name in LOG_COLUMNS else name.rsplit("_", 1)[0]
                tf.summary.scalar(f"{group}/{name}", value)
            for name, image in images.items():
                tf.summary.image(name, image[None])
        self._writer.flush()


def _png(path: Path) -> np.ndarray:
    """A PNG file as uint8 ``[height, width, 3]``."""
    from PIL import Image

    with Image.open(io.BytesIO(path.read_bytes())) as image:
        return np.asarray(image.convert("RGB"))


def border_clips(shard_dir: str | os.PathLike, spec: Any, n_clips: int = 8,
                 split: str = "val") -> dict[str, Any]:
    """One centre clip (at ``spec``'s length, step, size and normalisation) from each of up
    to ``n_clips`` videos of ``split``, the classes taken in turn, for
    :class:`BorderEffectCallback`.

    Returns
    -------
    dict
        ``clips`` ``[n, L, S, S, 3]`` float32, ``labels`` ``[n]``, ``video_ids`` (list).

    Raises
    ------
    ValueError
        ``split`` holds no videos.
    """
    import dataclasses

    from kvlrp.analysis.runs.config_checks import check_split
    from kvlrp.data.clips.pipeline import eval_dataset
    from kvlrp.data.shards.folder import read_index

    rows = check_split(read_index(shard_dir), split, shard_dir, "split")
    by_label = [group["video_id"].astype(str).tolist() for _, group in rows.groupby("label")]
    chosen = set(round_robin(by_label, n_clips))
    data = eval_dataset(shard_dir, dataclasses.replace(spec, crops=1), split=split, n_clips=1,
                        batch_size=max(1, len(chosen)), videos=chosen)
    clips, labels, vids = [], [], []
    for batch in data:
        clips.append(batch["clip"].numpy())
        labels.append(batch["label"].numpy())
        vids += [v.decode() for v in batch["video_id"].numpy()]
    return {"clips": np.concatenate(clips), "labels": np.concatenate(labels), "video_ids": vids}
