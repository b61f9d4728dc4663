"""``kvlrp prepare --runner beam``: the decode-once step as an Apache Beam pipeline.

The same shards as :func:`kvlrp.data.shards.folder.prepare_shards` (same shard plan and names, same
examples, same ``index.csv``, ``skipped.csv``, ``classes.json``, ``dataset.json`` and
``progress.json``), computed by any Beam runner: ``DirectRunner`` on one machine, Dataflow,
Flink or Spark on a cluster (``--beam-options "--runner=DataflowRunner --project=..."``).

Pipeline: the manifest is read and validated where the pipeline is launched (a CSV of paths,
small even for 240k videos; the class list and the shard plan need all of it), then one element
per planned shard -> ``Reshuffle`` (spreads shards over workers) -> decode each video of the
shard and write the TFRecord file (through ``tf.io.gfile``, so ``gs://`` etc. work) -> all shard
records -> the index tables. A video that cannot be decoded is listed in ``skipped.csv`` with
its reason; it never fails a bundle. Every path the workers touch (videos, ``--out``) must be
reachable from every worker: shared or object storage on a cluster.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from kvlrp.data.manifests.manifest import Manifest
from kvlrp.data.shards.decode_worker import DecodeTask, decode_task
from kvlrp.data.shards.folder import (
    PrepareResult,
    _example,
    _plan,
    _write_shard,
    manifest_rows,
    read_index,
    write_tables,
)
from kvlrp.data.shards.prepare_inputs import ShardOptions, checked_manifest
from kvlrp.data.shards.shard_progress import progress_settings, save_progress
from kvlrp.infra import fs

log = logging.getLogger(__name__)


def _import_beam():
    try:
        import apache_beam as beam
    except ImportError as err:
        raise ValueError(
            "--runner beam needs Apache Beam: pip install 'kvlrp[beam]' (or apache-beam)"
        ) from err
    return beam


class _ShardWriter:
    """Beam DoFn body: decode the videos of one shard and write its TFRecord file."""

    def __init__(self, out_dir: str, options: dict):
        self.out_dir, self.options = out_dir, options

    def __call__(self, element: tuple[str, list[dict]]) -> dict:
        import tensorflow as tf

        name, videos = element
        opts = self.options
        rows, skipped, examples = [], [], []
        for v in videos:
            task = DecodeTask(v["path"], opts["encoding"], opts["jpeg_quality"],
                              opts["short_side"], opts["allow_truncated"], opts.get("fps"))
            try:
                decoded = decode_task(task)
                error = decoded.error
            except Exception as err:  # noqa: BLE001 - one bad file must not fail the bundle
                decoded, error = None, f"{type(err).__name__}: {err}"
            if error is not None:
                skipped.append([v["path"], error])
                continue
            examples.append(_example(tf, v, v["label_index"], decoded, opts["encoding"]))
            rows.append([v["video_id"], v["label"], v["label_index"], v["split"],
                         decoded.n_frames, decoded.height, decoded.width, name, v["path"],
                         decoded.source_fps, decoded.source_frames])
        _write_shard(tf, fs.path(self.out_dir) / name, examples)
        # as the local path keys reuse: a shard is rebuilt when any of its manifest rows change
        return {"name": name, "video_ids": [v["video_id"] for v in videos], "rows": rows,
                "skipped": skipped, "file": name if examples else None,
                "manifest_rows": manifest_rows(videos)}


class _TableWriter:
    """Beam step after all shards: ``index.csv``, ``skipped.csv`` and the folder's metadata,
    in the shard plan's order (as the local path writes them)."""

    def __init__(self, out_dir: str, plan: list[str], settings: dict, source: str | None):
        self.out_dir, self.plan, self.settings, self.source = out_dir, plan, settings, source

    def __call__(self, records: list[dict]) -> int:
        out = fs.path(self.out_dir)
        by_name = {r["name"]: r for r in records}
        missing = [n for n in self.plan if n not in by_name]
        if missing:
            raise RuntimeError(f"shard(s) without a result: {missing[:3]}")
        shards = {n: {k: by_name[n][k]
                      for k in ("video_ids", "rows", "skipped", "file", "manifest_rows")}
                  for n in self.plan}
        index, _ = write_tables(out, self.plan, shards, self.settings, self.source)
        # The local path's progress file: a later local run with the same options reuses these.
        save_progress(out, self.settings, shards)
        return len(index)


def prepare_shards_beam(
    manifest: str | os.PathLike | Manifest,
    out_dir: str | os.PathLike,
    encoding: str = "jpeg",
    jpeg_quality: int = 95,
    short_side: int | None = None,
    videos_per_shard: int = 32,
    allow_truncated: bool = False,
    beam_args: Sequence[str] = (),
    fps: float | None = None,
    allow_outside_root: bool = False,
) -> PrepareResult:
    """:func:`kvlrp.data.shards.folder.prepare_shards` as an Apache Beam pipeline.

    Parameters
    ----------
    manifest, out_dir, encoding, jpeg_quality, short_side, videos_per_shard, allow_truncated, fps,
    allow_outside_root
        As for :func:`~kvlrp.data.shards.folder.prepare_shards` (``out_dir`` may be any
        ``tf.io.gfile`` URL).
    beam_args
        Beam pipeline options, e.g. ``["--runner=DirectRunner", "--direct_num_workers=2"]``
        (default: the DirectRunner).

    Returns
    -------
    PrepareResult
        As the local path returns (``n_reused_shards`` is 0: every shard is written).
    """
    options = ShardOptions(encoding, jpeg_quality, short_side, allow_truncated, videos_per_shard,
                           fps=fps)  # (bad options are named also where Beam is missing)
    beam = _import_beam()
    from apache_beam.options.pipeline_options import PipelineOptions

    manifest = checked_manifest(manifest, allow_outside_root)
    out = fs.path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = _plan(manifest.table, videos_per_shard)
    table = manifest.table.set_index("video_id", drop=False)
    elements: list[tuple[str, list[dict[str, Any]]]] = [
        (name, [{"video_id": str(vid), "label": str(table.loc[vid, "label"]),
                 "label_index": manifest.label_index(table.loc[vid, "label"]),
                 "split": str(table.loc[vid, "split"]), "path": str(table.loc[vid, "path"])}
                for vid in ids])
        for name, ids in plan.items()]
    settings = progress_settings(options, manifest.classes)
    source = str(manifest.source) if manifest.source else None
    log.info("beam prepare: %d videos in %d shards -> %s", len(table), len(plan), out)
    pipeline_options = PipelineOptions(list(beam_args) or ["--runner=DirectRunner"])
    with beam.Pipeline(options=pipeline_options) as p:
        _ = (p
             | "plan shards" >> beam.Create(elements)
             | "spread shards" >> beam.Reshuffle()
             | "decode and write shards" >> beam.Map(_ShardWriter(str(out), asdict(options)))
             | "all shards" >> beam.combiners.ToList()
             | "write index" >> beam.Map(_TableWriter(str(out), list(plan), settings, source)))
    index = read_index(out)
    skipped = fs.read_csv(out / "skipped.csv", dtype=str, keep_default_na=False)
    return PrepareResult(out, len(index), skipped, n_reused_shards=0)
