"""Decode every video of a manifest once into TFRecord shards (one example per video).

A shard folder holds ``<split>-<k>.tfrecord`` files, ``classes.json``, ``index.csv``
(``video_id, label, label_index, split, n_frames, height, width, shard, path, fps,
source_frames``: ``fps`` and ``source_frames`` are the file's own rate and frame count, also
when ``fps=`` resampled it to ``n_frames``), ``skipped.csv``
(``path, reason``), ``dataset.json`` (the options it was built with) and ``progress.json``
(finished shards, so a re-run skips them: :mod:`kvlrp.data.shards.shard_progress`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kvlrp.data.manifests.manifest import Manifest
from kvlrp.data.shards.decode_worker import DecodedVideo, DecodeTask, decode_task
from kvlrp.data.shards.prepare_inputs import ShardOptions, checked_manifest
from kvlrp.data.shards.robust_pool import ordered_map
from kvlrp.data.shards.shard_progress import load_progress, progress_settings, save_progress
from kvlrp.infra import fs
from kvlrp.infra.atomic import atomic_write, write_csv, write_json
from kvlrp.infra.folder_lock import folder_lock
from kvlrp.infra.safe_paths import check_out_dir

#: Upper bound of the decoding processes.
MAX_WORKERS = 256

INDEX_COLUMNS = ["video_id", "label", "label_index", "split", "n_frames", "height", "width",
                 "shard", "path", "fps", "source_frames"]


@dataclass(frozen=True)
class PrepareResult:
    """Outcome of :func:`prepare_shards`.

    Attributes
    ----------
    out_dir
        The shard folder.
    n_videos
        Videos written into shards.
    skipped
        DataFrame ``path, reason`` of videos that could not be decoded.
    n_reused_shards
        Shards found complete from an earlier run and left as they were.
    """

    out_dir: Path
    n_videos: int
    skipped: pd.DataFrame
    n_reused_shards: int = 0


def prepare_shards(
    manifest: str | os.PathLike | Manifest,
    out_dir: str | os.PathLike,
    encoding: str = "jpeg",
    jpeg_quality: int = 95,
    short_side: int | None = None,
    videos_per_shard: int = 32,
    workers: int = 2,
    allow_truncated: bool = False,
    progress: bool = True,
    fps: float | None = None,
    allow_outside_root: bool = False,
) -> PrepareResult:
    """Decode each video of ``manifest`` once and write TFRecord shards into ``out_dir``.

    Parameters
    ----------
    manifest
        A manifest CSV path or a :class:`~kvlrp.data.manifests.manifest.Manifest`.
    out_dir
        Shard folder (created). Shards finished by an earlier run with the same options are kept
        (``progress.json``); a folder built with other options or classes is refused, with
        each one that changed named.
    encoding
        ``"jpeg"`` (one JPEG per frame, small) or ``"raw"`` (uint8 bytes, lossless; one byte
        string per video, so keep raw videos well below protobuf's 2 GB, e.g. with
        ``short_side``).
    jpeg_quality
        JPEG quality (1-95).
    short_side
        Resize frames so their shorter side has this many pixels (``None``: keep the size).
    videos_per_shard
        Videos per TFRecord file.
    workers
        Decoding processes (``0`` or ``1``: decode in this process).
    allow_truncated
        Keep the decodable part of truncated files instead of skipping them.
    progress
        Show a tqdm progress bar.
    fps
        Resample every video to this frame rate at decode (frames dropped or repeated, see
        :mod:`kvlrp.video.resample`), so that one step spans the same time in every video;
        ``None``: keep each file's frames. ``index.csv`` keeps each file's own rate.
    allow_outside_root
        Read files outside the manifest's folder (absolute paths, ``..``, symlinks leading
        out); by default such a manifest is refused before anything is read or written.

    Returns
    -------
    PrepareResult
        Where the shards went, how many videos they hold, and what was skipped (with reasons).
    """
    options = ShardOptions(encoding, jpeg_quality, short_side, allow_truncated, videos_per_shard,
                           fps=fps)
    if not 0 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be in 0..{MAX_WORKERS} (0 or 1: decode in this "
                         f"process), got {workers}")
    manifest = checked_manifest(manifest, allow_outside_root)
    if fs.is_url(out_dir):  # no lock files on object stores: one writer per folder
        return _prepare_locked(manifest, fs.path(out_dir), options, workers, progress)
    out_dir = check_out_dir(out_dir)
    with folder_lock(out_dir, "kvlrp prepare"):
        return _prepare_locked(manifest, out_dir, options, workers, progress)


def _prepare_locked(manifest: Manifest, out_dir, options: ShardOptions, workers: int,
                    progress: bool) -> PrepareResult:
    import tensorflow as tf

    out_dir = fs.path(out_dir)  # local, or any tf.io.gfile URL
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = progress_settings(options, manifest.classes)
    shards = load_progress(out_dir, settings)
    plan = _plan(manifest.table, options.videos_per_shard)
    table = manifest.table.set_index("video_id", drop=False)
    rows_of = {name: manifest_rows([table.loc[vid] for vid in ids])
               for name, ids in plan.items()}
    done = _reusable(shards, plan, rows_of, out_dir)
    for name in sorted(set(shards) - set(plan)):  # shards of an older manifest
        shards.pop(name)
        (out_dir / name).unlink(missing_ok=True)
    save_progress(out_dir, settings, shards)
    pending = [(name, ids) for name, ids in plan.items() if name not in done]
    tasks = [DecodeTask(table.loc[vid, "path"], options.encoding, options.jpeg_quality,
                        options.short_side, options.allow_truncated, options.fps)
             for _, ids in pending for vid in ids]
    bar = _progress_bar(len(tasks), progress)
    results = _decode_all(tasks, workers)
    try:
        for name, ids in pending:
            shards[name] = _write_pending_shard(tf, out_dir / name, [table.loc[v] for v in ids],
                                                results, manifest, options.encoding, bar)
            save_progress(out_dir, settings, shards)
    finally:
        results.close()  # stops the worker pool, also on errors and interrupts
        bar.close()
    index, skipped = write_tables(out_dir, list(plan), shards, settings,
                                  str(manifest.source) if manifest.source else None)
    return PrepareResult(out_dir, len(index), skipped, n_reused_shards=len(done))


def write_tables(out_dir, plan: list[str], shards: dict[str, dict], settings: dict,
                 source: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write ``index.csv``, ``skipped.csv``, ``classes.json`` and ``dataset.json`` from the
    records of the shards in ``plan`` (in its order); returns the index and skipped tables.

    ``settings`` is :func:`~kvlrp.data.shards.shard_progress.progress_settings` (the options and
    classes), ``source`` the manifest file (None: a table); both runners write these files
    here, so their folders are alike.
    """
    index = pd.DataFrame([r for name in plan for r in shards[name]["rows"]],
                         columns=INDEX_COLUMNS)
    skipped = pd.DataFrame([s for name in plan for s in shards[name]["skipped"]],
                           columns=["path", "reason"])
    write_csv(index, out_dir / "index.csv")
    write_csv(skipped, out_dir / "skipped.csv")
    write_json(settings["classes"], out_dir / "classes.json")
    write_json({**settings, "n_videos": len(index), "n_skipped": len(skipped),
                "manifest": source}, out_dir / "dataset.json")
    return index, skipped


def manifest_rows(rows) -> list[list[str]]:
    """``[video_id, label, split, path]`` of a shard's manifest rows: a shard is reused only if
    these are unchanged (both runners record them)."""
    return [[str(row["video_id"]), *(str(row[c]) for c in ("label", "split", "path"))]
            for row in rows]


def _reusable(shards: dict, plan: dict[str, list[str]], rows_of: dict[str, list],
              out_dir) -> set[str]:
    """The planned shards an earlier run finished with the same manifest rows (file there)."""
    return {name for name, ids in plan.items()
            if shards.get(name, {}).get("video_ids") == ids
            and shards[name].get("manifest_rows") == rows_of[name]
            and (shards[name]["file"] is None or (out_dir / name).is_file())}


def _write_pending_shard(tf, path, rows: list, results: Iterator[DecodedVideo],
                         manifest: Manifest, encoding: str, bar) -> dict:
    """Decode the videos of one shard (the next results), write it; returns its record."""
    index_rows, skipped, examples = [], [], []
    for row in rows:
        decoded = next(results)
        bar.update(1)
        if decoded.error is not None:
            skipped.append([row["path"], decoded.error])
            continue
        label_index = manifest.label_index(row["label"])
        examples.append(_example(tf, row, label_index, decoded, encoding))
        index_rows.append([row["video_id"], row["label"], label_index, row["split"],
                           decoded.n_frames, decoded.height, decoded.width, path.name,
                           row["path"], decoded.source_fps, decoded.source_frames])
    _write_shard(tf, path, examples)
    return {"video_ids": [row["video_id"] for row in rows], "rows": index_rows,
            "skipped": skipped, "file": path.name if examples else None,
            "manifest_rows": manifest_rows(rows)}


def read_index(shard_dir: str | os.PathLike) -> pd.DataFrame:
    """The ``index.csv`` of a shard folder (one row per video in the shards)."""
    path = fs.path(shard_dir) / "index.csv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {shard_dir} is not a shard folder (make one with `kvlrp prepare`)"
        )
    return fs.read_csv(path, dtype={"video_id": str, "label": str, "split": str, "shard": str})


def read_classes(shard_dir: str | os.PathLike) -> list[str]:
    """Class names of a shard folder (index = class index)."""
    return json.loads((fs.path(shard_dir) / "classes.json").read_text())


def read_dataset_info(shard_dir: str | os.PathLike) -> dict:
    """The options a shard folder was built with (``dataset.json``)."""
    path = fs.path(shard_dir) / "dataset.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {shard_dir} is not a shard folder (make one with `kvlrp prepare`)"
        )
    return json.loads(path.read_text())


def shard_fingerprint(shard_dir: str | os.PathLike, split: str | None = None) -> str:
    """SHA-1 of what a shard folder holds (of one split, or of every split for ``None``): its
    index rows (video ids, labels, label indices, frame counts, frame sizes, shard names), the
    classes, the frame options of ``dataset.json`` and the sizes of its shard files; not the
    folder's path (a copied folder has the same fingerprint)."""
    shard_dir = fs.path(shard_dir)  # local, or any tf.io.gfile URL
    index = read_index(shard_dir)
    rows = index if split is None else index[index["split"] == split]
    rows = rows.drop(columns=["path"], errors="ignore")
    options = read_dataset_info(shard_dir)
    files = {name: fs.file_size(shard_dir / name)
             for name in dict.fromkeys(rows.get("shard", []))}
    content = {"rows": rows.astype(str).values.tolist(), "columns": list(rows.columns),
               "options": {k: options.get(k) for k in ("encoding", "jpeg_quality", "short_side",
                                                       "allow_truncated", "format", "classes",
                                                       "fps")},
               "files": files}
    return hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _plan(table: pd.DataFrame, videos_per_shard: int) -> dict[str, list[str]]:
    """Shard name -> video ids, per split in manifest order."""
    plan: dict[str, list[str]] = {}
    for split in sorted(table["split"].unique()):
        ids = table.loc[table["split"] == split, "video_id"].tolist()
        n_shards = -(-len(ids) // videos_per_shard)
        for k in range(n_shards):
            name = f"{split}-{k:05d}-of-{n_shards:05d}.tfrecord"
            plan[name] = ids[k * videos_per_shard:(k + 1) * videos_per_shard]
    return plan


def _decode_all(tasks: list[DecodeTask], workers: int) -> Iterator[DecodedVideo]:
    """Decoded videos in task order, from a spawn process pool (or in-process)."""
    if workers <= 1 or len(tasks) <= 1:
        yield from map(decode_task, tasks)
        return
    yield from ordered_map(decode_task, tasks, min(workers, len(tasks)), on_death=_died)


def _died(task: DecodeTask) -> DecodedVideo:
    """The result of a video whose decode worker was killed (e.g. out of memory)."""
    return DecodedVideo(task.path, error="the decode worker died while decoding this video "
                                         "(killed, e.g. out of memory; try a smaller "
                                         "--short-side or fewer --workers)")


def _example(tf, row: pd.Series, label_index: int, decoded: DecodedVideo, encoding: str):
    """One ``tf.train.Example`` for a decoded video."""

    def _bytes(values: list[bytes]):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))

    def _int(value: int):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))

    feature = {
        "video_id": _bytes([str(row["video_id"]).encode()]),
        "label": _bytes([str(row["label"]).encode()]),
        "label_index": _int(label_index),
        "split": _bytes([str(row["split"]).encode()]),
        "n_frames": _int(decoded.n_frames),
        "height": _int(decoded.height),
        "width": _int(decoded.width),
        "encoding": _bytes([encoding.encode()]),
        "frames": _bytes(decoded.frames),
    }
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString(deterministic=True)  # the same bytes in every process


def _write_shard(tf, path: Path, examples: list[bytes]) -> None:
    """Write ``examples`` to ``path`` through a temporary file (a shard is whole or absent)."""
    if not examples:
        return

    def write(tmp: Path) -> None:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for example in examples:
                writer.write(example)

    atomic_write(path, write)


def _progress_bar(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="decoding videos", unit="video", disable=not enabled)
