"""What an explain run computes (:func:`plan_explain`) and which of its steps ``partial/``
already holds (:func:`saved_steps`), decided before any work."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

import pandas as pd

from kvlrp.analysis.explain.config import ExplainConfig
from kvlrp.analysis.explain.frames import Analyzer, AnalyzerFactory, analyzer_factory
from kvlrp.analysis.explain.reports import state_path, table_path
from kvlrp.analysis.runs.partition import assign_videos
from kvlrp.analysis.runs.run_files import run_settings
from kvlrp.analysis.runs.skeleton import Run
from kvlrp.data.clips.normalization import NORMALIZATION_BOUNDS
from kvlrp.data.shards.folder import read_index
from kvlrp.infra import resume

logger = logging.getLogger(__name__)

__all__ = ["PRIOR_SEED_OFFSET", "ExplainPlan", "SavedSteps", "plan_explain", "round_robin",
           "saved_steps"]

#: Prior seeds start here, away from training seeds (a prior re-initialised with the training
#: seed would reproduce the trained model's own initial weights).
PRIOR_SEED_OFFSET = 1000

T = TypeVar("T")


@dataclass(frozen=True)
class ExplainPlan:
    """What a run computes, decided before any work."""

    steps: list[int]
    analyzer_name: str
    #: Builds the analyzer of a model (None: ``analyzer`` is an object, and there is no prior).
    factory: AnalyzerFactory | None
    analyzer: Analyzer | None
    bounds: Any
    prior_seeds: list[int]
    prior_note: str
    #: The split's rows of the shard index.
    index: pd.DataFrame
    #: The frame flipping and heatmap videos (one clip each).
    flip_ids: list[str]
    #: This worker's videos (None: all of them).
    videos: list[str] | None
    settings: dict[str, Any]

    def step_settings(self, step: int) -> dict[str, Any]:
        """Everything the tables of ``step`` depend on."""
        return {**self.settings, "step": step}


@dataclass(frozen=True)
class SavedSteps:
    """The completed steps ``partial/`` holds (step -> state) and the steps to compute."""

    reused: dict[int, dict]
    pending: list[int]


def plan_explain(run: Run[ExplainConfig]) -> ExplainPlan:
    """The steps, analyzers, videos and settings of a run."""
    config, info = run.config, run.info
    steps = list(config.steps or [info.step])
    bounds = NORMALIZATION_BOUNDS[info.normalization]  # floats, or one value per channel
    factory, obj = _analyzer_of(config.analyzer, bounds)
    prior_seeds, prior_note = _prior_of(config, factory)
    index = read_index(run.shard_dir)
    index = index[index["split"] == config.split]
    if index.empty:
        raise ValueError(f"no videos in split {config.split!r} of {run.shard_dir}")
    flip_ids = _flip_video_ids(index, config.flip_videos)
    videos = (assign_videos(index, config.worker, pinned=flip_ids) if config.worker.is_split
              else None)
    return ExplainPlan(steps=steps, analyzer_name=config.analyzer_name, factory=factory,
                       analyzer=obj, bounds=bounds, prior_seeds=prior_seeds,
                       prior_note=prior_note, index=index, flip_ids=flip_ids, videos=videos,
                       settings=_settings(run, prior_seeds))


def _settings(run: Run[ExplainConfig], prior_seeds: list[int]) -> dict[str, Any]:
    """Everything a step's tables depend on (the bootstrap, n_boot, is redone from them
    anyway). A custom analyzer is known here only by its name."""
    config = run.config
    settings = {**run_settings(run.model, run.info, run.shard_dir, config.split,
                               config.clips_per_video),
                "classes": list(run.info.classes), "analyzer": config.analyzer_name,
                "target": config.target, "prior_seeds": prior_seeds,
                "flip_videos": config.flip_videos, "flip_fill": config.flip_fill,
                "n_heatmaps": config.n_heatmaps, "batch_size": config.batch_size,
                "seed": config.seed, "crops": config.crops,
                "temporal_sigma": config.temporal_sigma}
    if config.worker.is_split:
        settings["worker"] = [config.worker.num_workers, config.worker.index]
    return settings


def _analyzer_of(analyzer: str | Analyzer | AnalyzerFactory,
                 bounds: Any) -> tuple[AnalyzerFactory | None, Analyzer | None]:
    """-> (analyzer factory or None, analyzer object or None)."""
    if isinstance(analyzer, str):
        return analyzer_factory(analyzer, bounds), None
    if hasattr(analyzer, "analyze"):
        return None, cast(Analyzer, analyzer)
    return cast(AnalyzerFactory, analyzer), None


def _prior_of(config: ExplainConfig, factory: AnalyzerFactory | None) -> tuple[list[int], str]:
    """The prior's seeds and what the summary says about them."""
    n, seed = config.prior_seeds, config.seed
    if n and factory is None:
        return [], "not computed (an analyzer object cannot be rebuilt for new weights)"
    if not n:
        return [], "not computed (prior_seeds=0)"
    note = (f"{n} re-initialised copies (seeds {PRIOR_SEED_OFFSET + seed}.."
            f"{PRIOR_SEED_OFFSET + seed + n - 1}), each explaining its own top class on the "
            f"same clips")
    return [PRIOR_SEED_OFFSET + seed + k for k in range(n)], note


def round_robin(groups: Iterable[Iterable[T]], limit: int | None = None) -> list[T]:
    """Items taken one from each group in turn (a group's items in order) until all are
    taken, or ``limit`` of them."""
    queues = [deque(g) for g in groups]
    chosen: list[T] = []
    while any(queues) and (limit is None or len(chosen) < limit):
        for queue in queues:
            if queue and (limit is None or len(chosen) < limit):
                chosen.append(queue.popleft())
    return chosen


def _flip_video_ids(index: pd.DataFrame, n_videos: int) -> list[str]:
    """Up to ``n_videos`` video ids, taken round-robin over the classes."""
    return round_robin((g["video_id"].astype(str).tolist()
                        for _, g in index.groupby("label", sort=True)), n_videos)


# --- resume: the steps partial/ already holds ---

def saved_steps(run: Run[ExplainConfig], plan: ExplainPlan) -> SavedSteps:
    """The completed steps to reuse (written with the plan's settings, their tables and
    heatmaps still there) and the steps to compute."""
    reused: dict[int, dict] = {}
    changed: set[str] = set()
    for step in dict.fromkeys(plan.steps):
        state, diff = _saved_step(run.partial, step, plan.step_settings(step), run.out)
        if state is not None:
            reused[step] = state
        changed.update(diff)
    pending = [s for s in dict.fromkeys(plan.steps) if s not in reused]
    if changed:
        logger.warning("partial results in %s were written with other settings or model "
                       "weights (changed: %s); recomputing step(s) %s", run.partial,
                       ", ".join(sorted(changed)), ", ".join(map(str, pending)))
    if reused and run.config.progress:
        logger.info("reusing step(s) %s from %s", ", ".join(map(str, reused)), run.partial)
    return SavedSteps(reused=reused, pending=pending)


def _saved_step(partial: Path, step: int, settings: dict,
                out: Path) -> tuple[dict | None, Sequence[str]]:
    """A completed step in ``partial/`` written with ``settings`` (its tables and heatmaps
    still there), else None; and the settings that changed."""
    decision = resume.check(state_path(partial, step), settings)
    state, changed = decision.state, decision.changed
    if state is None or not state.get("complete"):
        return None, changed
    files = [table_path(partial, step, key) for key in state["tables"]]
    files += [out / "heatmaps" / f for f in state["heatmaps"]]
    if not all(f.exists() for f in files):
        return None, []
    return state, []
