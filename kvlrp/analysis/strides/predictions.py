"""Per-clip predictions at several step sizes, decoding each video once, resumable.

A *run key* is ``(step, control)``: ``control == "none"`` for ordinary evaluation clips and
``"shuffled"`` for the frame-shuffled control (each clip's frames permuted with a seeded random
permutation that is never the identity), evaluated at the training step. Per key, progress lives
in ``partial/<control>_step<step>.csv`` (clip rows) and ``.json`` (settings, videos done,
complete), both written atomically; a restarted run reuses completed keys and the finished
videos of incomplete ones, and ends with the same table as an uninterrupted run.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kvlrp.analysis.runs.values import as_str
from kvlrp.infra import fs, resume
from kvlrp.infra.atomic import write_csv
from kvlrp.infra.checks import check_positive

logger = logging.getLogger(__name__)

#: ``make_clips(frames, step) -> {"clip": [n, L, H, W, C], "clip_start": [n], "is_short": [n]}``
ClipMaker = Callable[[Any, int], Mapping[str, Any]]
CLIP_COLUMNS = ["step", "control", "video_id", "label_index", "clip_index", "clip_start",
                "crop", "is_short"]


def shuffle_permutation(length: int, video_id: str, clip_index: int, seed: int = 0) -> np.ndarray:
    """Seeded permutation of ``range(length)`` for one clip, never the identity (length > 1)."""
    rng = np.random.default_rng([seed, zlib.crc32(video_id.encode()), clip_index])
    identity = np.arange(length)
    while True:
        perm = rng.permutation(length)
        if length < 2 or not np.array_equal(perm, identity):
            return perm


class _KeyState:
    """Rows and finished videos of one run key, persisted under ``partial/``."""

    def __init__(self, partial_dir: Path | None, step: int, control: str, settings: dict):
        self.step, self.control, self.settings = step, control, settings
        self.rows: list[dict] = []
        self.done: list[str] = []
        self.complete = False
        self.dirty = False
        self.csv = self.meta = None
        if partial_dir is None:
            return
        stem = f"{control}_step{step}"
        self.csv, self.meta = partial_dir / f"{stem}.csv", partial_dir / f"{stem}.json"
        if not self.csv.exists():  # (a state file without its table is recomputed)
            return
        decision = resume.check(self.meta, settings)
        if decision.unreadable:
            logger.warning("%s; recomputing step %s (%s)", decision.reason, step, control)
            return
        if not decision.reuse:
            if decision.saved is not None:
                logger.warning("%s was written with other settings; recomputing step %s (%s): "
                               "changed %s", self.meta, step, control, decision.describe())
            return
        state = decision.state
        done = set(state["videos_done"])
        if done:  # (a worker with no videos wrote an empty table)
            try:
                table = fs.read_csv(self.csv, dtype={"video_id": str})
            except pd.errors.EmptyDataError:  # no clip yet (e.g. every video too short)
                table = pd.DataFrame({"video_id": pd.Series(dtype=str)})
            self.rows = table[table["video_id"].isin(done)].to_dict("records")
        self.done = list(state["videos_done"])
        # a key without any clip row is never complete: it is recomputed, not reused
        self.complete = bool(state["complete"]) and bool(self.rows)

    def flush(self, complete: bool = False) -> None:
        self.complete = (self.complete or complete) and bool(self.rows)
        if self.meta is None or not (self.dirty or complete):
            return
        write_csv(pd.DataFrame(self.rows), self.csv)  # rows first, then the list of videos
        resume.save(self.meta, self.settings, videos_done=self.done, complete=self.complete)
        self.dirty = False


def stride_predictions(
    model: Any,
    videos: Iterable[Mapping[str, Any]],
    make_clips: ClipMaker,
    steps: Iterable[int],
    control_step: int | None = None,
    control_seed: int = 0,
    partial_dir: str | Path | None = None,
    settings: dict | None = None,
    checkpoint_every: int = 4,
    batch_size: int = 32,
    on_video: Callable[[int, str], None] | None = None,
    progress: Any = None,
    allow_empty: bool = False,
) -> pd.DataFrame:
    """Softmax probabilities of every evaluation clip at every step (and the shuffled control).

    Parameters
    ----------
    model
        Keras model returning class probabilities.
    videos
        One dict per video: ``frames`` (decoded once), ``label`` (class index), ``video_id``.
    make_clips
        Cuts evaluation clips of one video at a step (e.g.
        ``kvlrp.data.clips.pipeline.eval_clips``).
    steps
        Step sizes to evaluate.
    control_step
        Step of the frame-shuffled control row (usually the training step); None: no control.
    partial_dir
        Folder for resumable progress; None: keep everything in memory.
    settings
        What the partial results depend on (data, split, clip settings, model fingerprint);
        partial files written with other settings are recomputed.
    on_video
        Called with ``(videos_seen, video_id)`` after each video (progress hooks, tests).
    allow_empty
        Return an empty table (columns :data:`CLIP_COLUMNS`) instead of raising when no clip
        was produced (a worker whose part of the videos is empty).

    Returns
    -------
    DataFrame
        ``step, control, video_id, label_index, clip_index, clip_start, crop, is_short,
        prob_<k>``,
        sorted by ``control, step, video_id, clip_index``.
    """
    check_positive("batch_size", batch_size)
    keys = [(int(s), "none") for s in dict.fromkeys(int(s) for s in steps)]
    if control_step is not None:
        keys.append((int(control_step), "shuffled"))
    pdir = None if partial_dir is None else fs.path(partial_dir)
    if pdir is not None:
        pdir.mkdir(parents=True, exist_ok=True)
    states = [_KeyState(pdir, s, c, {**(settings or {}), "step": s, "control": c,
                                     "control_seed": control_seed}) for s, c in keys]
    pending = [st for st in states if not st.complete]
    resumed = [st for st in states if st.complete or st.done]
    if resumed:
        logger.info("resuming from %s: %s", pdir, "; ".join(
            f"step {st.step}{' (shuffled control)' if st.control == 'shuffled' else ''} "
            + ("complete" if st.complete else f"{len(st.done)} video(s) done")
            for st in resumed))
    try:
        if pending:
            _run_videos(_compiled(model), videos, make_clips, pending, control_seed,
                        checkpoint_every, batch_size, on_video, progress)
            for st in pending:
                st.flush(complete=True)
    except BaseException:
        for st in pending:  # keep what is finished, then let the interruption through
            st.flush()
        raise
    table = pd.DataFrame([r for st in states for r in st.rows])
    if table.empty and allow_empty:
        return pd.DataFrame(columns=CLIP_COLUMNS)
    if table.empty:
        raise ValueError("no evaluation clip was produced (is the split empty, or is every "
                         "video shorter than a clip under short_policy='skip'?)")
    table["video_id"] = table["video_id"].astype(str)
    return table.sort_values(["control", "step", "video_id", "clip_index"]).reset_index(
        drop=True)


def _compiled(model: Any) -> Callable:
    """A Keras model's inference as one traced ``tf.function`` (a model of many small layers,
    such as X3D's temporal taps, spends most of an eager call in Python: 15x slower on a 2-clip
    batch); any other callable as it is."""
    import keras

    if not isinstance(model, keras.Model):
        return model
    from kvlrp.training.evaluation import make_predict

    predict = make_predict(model)
    return lambda clips, training=False: predict(clips)


def _run_videos(model, videos, make_clips, pending, control_seed, checkpoint_every,
                batch_size, on_video, progress) -> None:
    done_sets = {id(st): set(st.done) for st in pending}
    for n_seen, video in enumerate(videos, start=1):
        vid = as_str(video["video_id"])
        todo = [st for st in pending if vid not in done_sets[id(st)]]
        label = int(np.asarray(video["label"]))
        for st in todo:
            clips = make_clips(video["frames"], st.step)
            x = np.asarray(clips["clip"], dtype=np.float32)
            if st.control == "shuffled":
                x = np.stack([c[shuffle_permutation(len(c), vid, i, control_seed)]
                              for i, c in enumerate(x)])
            probs = [np.asarray(model(x[i:i + batch_size], training=False))
                     for i in range(0, len(x), batch_size)]  # no clips: "skip" policy
            probs = np.concatenate(probs) if probs else np.zeros((0, 0))
            starts = np.asarray(clips["clip_start"]).reshape(-1)
            short = np.asarray(clips["is_short"]).reshape(-1)
            crop = np.asarray(clips.get("crop", np.zeros_like(starts))).reshape(-1)
            for i, p in enumerate(probs):
                row = {"step": st.step, "control": st.control, "video_id": vid,
                       "label_index": label, "clip_index": i, "clip_start": int(starts[i]),
                       "crop": int(crop[i]), "is_short": bool(short[i])}
                row.update({f"prob_{k}": float(v) for k, v in enumerate(p)})
                st.rows.append(row)
            st.done.append(vid)
            done_sets[id(st)].add(vid)
            st.dirty = True
        if progress is not None:
            progress.update(1)
        if on_video is not None:
            on_video(n_seen, vid)
        if checkpoint_every and n_seen % checkpoint_every == 0:
            for st in pending:
                st.flush()

