"""Split the videos of an evaluation over several workers, and put their tables back in order.

``kvlrp explain`` and ``kvlrp strides`` accept ``--num-workers N --worker-index I`` (or read both
from ``TF_CONFIG``): worker ``I`` evaluates only its part of the videos and writes partial
tables; ``kvlrp merge`` concatenates the parts and sorts them into the order one run on one
machine produces (the order of the shard index), then computes the final tables.

Videos are assigned whole shards at a time when there are at least as many shards as workers
(each worker then reads only its own shard files), else one video at a time, round-robin in
index order. Videos in ``pinned`` (the frame-flipping and heatmap videos of ``explain``) always go
to worker 0, so that the one step that needs them together still sees them together.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

WORKER_FILE = "worker.json"


@dataclass(frozen=True)
class Worker:
    """One worker of ``num_workers`` (``index`` counts from 0)."""

    num_workers: int = 1
    index: int = 0

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"--num-workers must be >= 1, got {self.num_workers}")
        if not 0 <= self.index < self.num_workers:
            raise ValueError(f"--worker-index must be in 0..{self.num_workers - 1} for "
                             f"--num-workers {self.num_workers}, got {self.index}")

    @property
    def is_split(self) -> bool:
        """True when the work is shared with other workers."""
        return self.num_workers > 1


def resolve_worker(num_workers: int | None = None, worker_index: int | None = None,
                   environ: Mapping[str, str] | None = None) -> Worker:
    """The worker given by the options, else by ``TF_CONFIG``, else the only worker.

    ``TF_CONFIG`` (as ``tf.distribute`` reads it): the workers are ``cluster.chief`` (if any)
    followed by ``cluster.worker``; ``task`` names this one (the chief is worker 0).
    """
    if num_workers is not None or worker_index is not None:
        if num_workers is None or worker_index is None:
            raise ValueError("give --num-workers and --worker-index together (or neither, to "
                             "read them from TF_CONFIG)")
        return Worker(int(num_workers), int(worker_index))
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not raw:
        return Worker()
    try:
        config = json.loads(raw)
        cluster, task = config.get("cluster", {}), config["task"]
        chiefs, workers = list(cluster.get("chief", [])), list(cluster.get("worker", []))
        task_type, task_index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"TF_CONFIG is not valid ({err}); expected e.g. '{{\"cluster\": {{\"worker\": "
            f"[\"host1:2222\", \"host2:2222\"]}}, \"task\": {{\"type\": \"worker\", "
            f"\"index\": 0}}}}'") from err
    if task_type == "chief":
        return Worker(len(chiefs) + len(workers), task_index)
    if task_type == "worker":
        return Worker(len(chiefs) + len(workers), len(chiefs) + task_index)
    raise ValueError(f"TF_CONFIG task type {task_type!r} does not evaluate videos; "
                     f"explain/strides workers are 'chief' or 'worker'")


def assign_videos(index: pd.DataFrame, worker: Worker,
                  pinned: Collection[str] = ()) -> list[str]:
    """Video ids of ``index`` (rows of one split, in index order) evaluated by ``worker``.

    Every video goes to exactly one of the ``worker.num_workers`` workers; the result keeps
    index order.
    """
    ids = index["video_id"].astype(str).tolist()
    if not worker.is_split:
        return ids
    pinned = set(pinned)
    rest = index[~index["video_id"].astype(str).isin(pinned)]
    shards = list(dict.fromkeys(rest["shard"].astype(str))) if "shard" in rest else []
    if len(shards) >= worker.num_workers:
        mine_shards = set(shards[worker.index::worker.num_workers])
        mine = set(rest.loc[rest["shard"].astype(str).isin(mine_shards), "video_id"].astype(str))
    else:
        mine = set(rest["video_id"].astype(str).tolist()[worker.index::worker.num_workers])
    if worker.index == 0:
        mine |= pinned
    return [v for v in ids if v in mine]


def video_rank(video_ids: Sequence[str]) -> dict[str, int]:
    """Position of each video in the order one run on one machine sees them."""
    return {str(v): i for i, v in enumerate(video_ids)}


def sort_rows(df: pd.DataFrame, rank: Mapping[str, int], keys: Sequence[str]) -> pd.DataFrame:
    """``df`` sorted by ``keys`` where ``"video_id"`` sorts by ``rank`` (a stable sort).

    Other keys sort by value; the result has a fresh 0..n-1 index and the original dtypes.
    """
    if df.empty:
        return df.reset_index(drop=True)
    order = pd.DataFrame({k: (df["video_id"].astype(str).map(rank) if k == "video_id"
                              else df[k]) for k in keys})
    if order.isna().any().any():
        missing = sorted(set(df["video_id"].astype(str)) - set(rank))[:3]
        raise ValueError(f"rows of videos not in the shard index: {missing}")
    positions = order.sort_values(list(keys), kind="stable").index
    return df.loc[positions].reset_index(drop=True)


def write_worker_file(out, kind: str, worker: Worker, settings: dict, context: dict,
                      videos: Sequence[str] | None, states: dict) -> dict:
    """Write ``out/worker.json``: what ``kvlrp merge`` needs from one worker's folder.

    ``settings`` must be the same on every worker except for its ``worker`` entry; ``states``
    are the per-step (or per-key) states whose tables are in ``out/partial``.
    """
    from kvlrp.infra.atomic import write_json

    record = {"kind": kind, "num_workers": worker.num_workers, "worker_index": worker.index,
              "settings": {k: v for k, v in settings.items() if k != "worker"},
              "context": context, "videos": list(videos or []), "states": states}
    write_json(record, f"{out}/{WORKER_FILE}")
    return {"kind": f"{kind}-worker", "worker": [worker.num_workers, worker.index],
            "n_videos": len(record["videos"]), "out": str(out)}
