"""The skeleton every evaluation run follows (``run_explain``, ``run_strides``).

:func:`run_evaluation` owns the order: config -> output folder -> classes -> plan -> resume ->
compute -> summarise (the final tables, or one worker's ``worker.json``). A :class:`RunKind`
fills in what differs between explain and strides: what to plan, what ``partial/`` already
holds, how to compute the rest and how to write the reports. What both summaries share is
built here too (:func:`shared_context`, :func:`write_summary`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from kvlrp.analysis.runs.class_check import check_classes
from kvlrp.analysis.runs.config_checks import config_from
from kvlrp.analysis.runs.partition import Worker, write_worker_file
from kvlrp.analysis.runs.timing import clip_fps
from kvlrp.data.clips.spec import DEFAULT_CROPS
from kvlrp.infra.atomic import write_json
from kvlrp.infra.safe_paths import check_out_dir

__all__ = ["Run", "RunConfig", "RunKind", "WorkerPart", "run_evaluation", "shared_context",
           "write_summary"]


class RunConfig(Protocol):
    """The options every run config has (:class:`~kvlrp.analysis.explain.config.ExplainConfig`,
    :class:`~kvlrp.analysis.strides.config.StridesConfig`)."""

    @property
    def split(self) -> str: ...
    @property
    def clips_per_video(self) -> int | str: ...
    @property
    def crops(self) -> int: ...
    @property
    def n_boot(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def worker(self) -> Worker: ...

    def as_dict(self) -> dict[str, Any]: ...


ConfigT = TypeVar("ConfigT", bound=RunConfig)
PlanT = TypeVar("PlanT")
SavedT = TypeVar("SavedT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True)
class Run(Generic[ConfigT]):
    """What one run was given, checked: the model and its :class:`~kvlrp.models.ModelInfo`,
    the shard folder, the output folder and the options."""

    model: Any
    info: Any
    shard_dir: str | Path
    out: Path
    config: ConfigT
    #: The model's folder or ``.keras`` file, for the summary's ``provenance`` (None: unknown).
    model_path: str | Path | None = None

    @property
    def partial(self) -> Path:
        """Where progress is kept for resuming (``out/partial``)."""
        return self.out / "partial"


@dataclass(frozen=True)
class WorkerPart:
    """What one of several workers keeps in ``worker.json`` for ``kvlrp merge``
    (:func:`~kvlrp.analysis.runs.partition.write_worker_file`)."""

    settings: dict[str, Any]
    videos: Sequence[str] | None
    states: dict[str, Any]


class RunKind(Protocol[ConfigT, PlanT, SavedT, ResultT]):
    """What differs between the runs: one method per phase of :func:`run_evaluation`."""

    #: ``explain`` or ``strides``: the ``kind`` of ``worker.json`` and ``summary.json``.
    name: str
    #: The frozen options class (built from keywords when no ``config=`` is given).
    config_type: type[ConfigT]

    def plan(self, run: Run[ConfigT]) -> PlanT:
        """What the run computes, decided before any work (bad data raises here)."""
        ...

    def resume(self, run: Run[ConfigT], plan: PlanT) -> SavedT:
        """What ``run.partial`` already holds that ``plan`` may reuse."""
        ...

    def compute(self, run: Run[ConfigT], plan: PlanT, saved: SavedT) -> ResultT:
        """Everything not reused, each piece written to ``run.partial`` as it finishes."""
        ...

    def context(self, run: Run[ConfigT], plan: PlanT) -> dict[str, Any]:
        """What the reports need besides ``compute``'s result (kept in ``worker.json``)."""
        ...

    def worker_part(self, run: Run[ConfigT], plan: PlanT, result: ResultT) -> WorkerPart:
        """One worker's record for ``kvlrp merge``."""
        ...

    def write_reports(self, run: Run[ConfigT], result: ResultT,
                      context: dict[str, Any]) -> dict[str, Any]:
        """The final tables and ``summary.json``; returns the summary."""
        ...


def run_evaluation(kind: RunKind[ConfigT, PlanT, SavedT, ResultT], model: Any, info: Any,
                   shard_dir: str | Path, out_dir: str | Path, config: ConfigT | None,
                   options: Mapping[str, Any], model_path: str | Path | None = None
                   ) -> dict[str, Any]:
    """Run ``kind`` over the evaluation clips of a shard folder and write its reports.

    Parameters
    ----------
    kind
        What the run computes (explain or strides).
    model, info
        A Keras model and its :class:`~kvlrp.models.ModelInfo` (classes, clip settings,
        normalisation).
    shard_dir
        Shard folder from ``kvlrp prepare``.
    out_dir
        Output folder (local, or any ``tf.io.gfile`` URL).
    config, options
        The options as one ``kind.config_type``, or as its fields by keyword, not both.
    model_path
        Where the model was loaded from (a model folder or a ``.keras`` file), recorded with
        its SHA-256 in the summary's ``provenance`` (None: a model without a file).

    Returns
    -------
    dict
        The content of ``summary.json`` (or, for one of several workers, what it wrote).
    """
    config = config_from(kind.config_type, config, options, f"run_{kind.name}")
    out = check_out_dir(out_dir)  # local, or any tf.io.gfile URL
    check_classes(model, info, shard_dir)
    run = Run(model, info, shard_dir, out, config, model_path)
    plan = kind.plan(run)
    saved = kind.resume(run, plan)
    result = kind.compute(run, plan, saved)
    return _summarise(kind, run, plan, result)


def _summarise(kind: RunKind[ConfigT, PlanT, SavedT, ResultT], run: Run[ConfigT], plan: PlanT,
               result: ResultT) -> dict[str, Any]:
    """The final tables of the only worker, or ``worker.json`` of one of several."""
    context = kind.context(run, plan)
    worker = run.config.worker
    if worker.is_split:
        part = kind.worker_part(run, plan, result)
        return write_worker_file(run.out, kind.name, worker, part.settings, context,
                                 part.videos, part.states)
    return kind.write_reports(run, result, context)


def shared_context(run: Run[ConfigT], steps: Sequence[int]) -> dict[str, Any]:
    """The part of a run's context every kind has: split, steps, clip settings, frame rate,
    bootstrap, the options (``config``) and the ``provenance``
    (:func:`kvlrp.analysis.runs.provenance.run_provenance`: model file, shards, software,
    command)."""
    from kvlrp.analysis.runs.provenance import run_provenance  # (Keras)

    config = run.config
    fps, fps_note = clip_fps(run.shard_dir, config.split)
    return {"split": config.split, "steps": list(steps), "train_step": run.info.step,
            "clip_len": run.info.clip_len, "clips_per_video": config.clips_per_video,
            "crops": config.crops, "fps": fps, "fps_note": fps_note, "n_boot": config.n_boot,
            "seed": config.seed, "config": config.as_dict(),
            "provenance": run_provenance(run.model_path, run.shard_dir)}


def write_summary(out: Path, kind: str, context: Mapping[str, Any],
                  files: Mapping[str, Path], fields: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``out/summary.json``: the keys every run's summary has, then ``fields``.

    ``context`` is the run's (:func:`shared_context` and the kind's own keys, possibly read
    back from an older ``worker.json``); ``files`` are the tables written.
    """
    summary = {
        "kind": kind, "split": context["split"], "steps": context["steps"],
        "train_step": context["train_step"], "clip_len": context["clip_len"],
        "clips_per_video": context["clips_per_video"],
        "crops": context.get("crops", DEFAULT_CROPS), "fps": context.get("fps"),
        "fps_note": context.get("fps_note"), **fields,
        # the options of the run; not its worker: a merged run's summary is that of one run
        "config": {k: v for k, v in (context.get("config") or {}).items() if k != "worker"},
        "files": {k: str(v) for k, v in files.items()},
        # paths and a time: kept in one object, so comparisons of two runs can drop it
        "provenance": context.get("provenance"),
    }
    write_json(summary, out / "summary.json")
    return summary
