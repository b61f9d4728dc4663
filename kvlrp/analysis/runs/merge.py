"""``merge_runs``: the final tables of ``kvlrp explain`` / ``kvlrp strides`` from the folders of
several workers (``--num-workers N --worker-index I``), the same as one run on one machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kvlrp.analysis.explain.reports import write_explain_reports
from kvlrp.analysis.runs.partition import WORKER_FILE
from kvlrp.analysis.strides.reports import write_strides_reports
from kvlrp.infra import fs, resume
from kvlrp.infra.atomic import atomic_write


def read_workers(dirs: Sequence[str | Path]) -> list[dict]:
    """The ``worker.json`` of each folder, checked to be one complete set of workers of one
    run (same kind, same settings, every worker index exactly once), ordered by index."""
    if not dirs:
        raise ValueError("give the folders of the workers to merge")
    records = []
    for d in dirs:
        path = fs.path(d) / WORKER_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: {d} is not the output folder of a worker run (run "
                f"`kvlrp explain` or `kvlrp strides` with --num-workers N --worker-index I)")
        records.append({**json.loads(path.read_text()), "dir": fs.path(d)})
    first = records[0]
    for r in records[1:]:
        for key in ("kind", "num_workers"):
            if r[key] != first[key]:
                raise ValueError(f"{r['dir']} has {key} {r[key]!r} but {first['dir']} has "
                                 f"{first[key]!r}: these are not workers of one run")
        if r["settings"] != first["settings"]:
            diff = sorted(k for k in set(r["settings"]) | set(first["settings"])
                          if r["settings"].get(k) != first["settings"].get(k))
            raise ValueError(f"{r['dir']} and {first['dir']} were run with different settings "
                             f"({', '.join(diff)}): these are not workers of one run")
    indices = sorted(r["worker_index"] for r in records)
    n = first["num_workers"]
    if indices != list(range(n)):
        missing = sorted(set(range(n)) - set(indices))
        dup = sorted({i for i in indices if indices.count(i) > 1})
        raise ValueError(f"need the folders of all {n} workers exactly once; missing worker "
                         f"index(es) {missing}, repeated {dup}")
    return sorted(records, key=lambda r: r["worker_index"])


def merge_runs(dirs: Sequence[str | Path], out_dir: str | Path) -> dict:
    """Write the final tables of the run whose workers wrote ``dirs`` into ``out_dir``.

    Returns
    -------
    dict
        The content of the merged ``summary.json``.
    """
    records = read_workers(dirs)
    out = fs.path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if records[0]["kind"] == "explain":
        return _merge_explain(records, out)
    if records[0]["kind"] == "strides":
        return _merge_strides(records, out)
    raise ValueError(f"unknown worker kind {records[0]['kind']!r} in {records[0]['dir']}")


def _merge_explain(records: list[dict], out: Path) -> dict:
    sources = []
    for r in records:
        states = {int(step): state for step, state in r["states"].items()}
        for state in states.values():
            for name in state["heatmaps"]:
                src = r["dir"] / "heatmaps" / name
                atomic_write(out / "heatmaps" / name,
                             lambda tmp, src=src: tmp.write_bytes(src.read_bytes()))
        sources.append((r["dir"] / "partial", states))
    return write_explain_reports(out, sources, records[0]["context"])


def _merge_strides(records: list[dict], out: Path) -> dict:
    ctx = records[0]["context"]
    keys = [(int(s), "none") for s in dict.fromkeys(ctx["steps"])]
    if ctx["control"]:
        keys.append((int(ctx["train_step"]), "shuffled"))
    clips = _strides_clips([r["dir"] / "partial" for r in records], keys)
    sel_clips = None
    if ctx["select_on"] != ctx["split"]:
        sel_clips = _strides_clips([r["dir"] / "partial" / ctx["select_on"] for r in records],
                                   [k for k in keys if k[1] == "none"])
    return write_strides_reports(out, clips, sel_clips, ctx)


def _strides_clips(partials: list[Path], keys: list[tuple[int, str]]) -> pd.DataFrame:
    """Clip rows of every key from every worker, in the order one run sorts them."""
    parts = []
    for partial in partials:
        for step, control in keys:
            meta = partial / f"{control}_step{step}.json"
            state = resume.read(meta)  # (UnreadableStateError names a corrupt file)
            if state is None:
                raise FileNotFoundError(f"{meta} not found: that worker did not evaluate step "
                                        f"{step} ({control})")
            if not state.get("complete"):
                raise ValueError(f"{meta}: that worker has not finished step {step} "
                                 f"({control}); re-run it (it resumes) before merging")
            if state["videos_done"]:
                parts.append(fs.read_csv(partial / f"{control}_step{step}.csv",
                                         dtype={"video_id": str}, float_precision="round_trip"))
    table = pd.concat(parts, ignore_index=True)
    table["video_id"] = table["video_id"].astype(str)
    return table.sort_values(["control", "step", "video_id", "clip_index"]).reset_index(
        drop=True)
