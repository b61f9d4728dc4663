"""Frame-position relevance of a Keras video model over evaluation clips, and the position prior
of its architecture (the same model re-initialised with fresh weights).

Any object with iNNvestigate's ``analyze(x, neuron_selection)`` method is an analyzer here. The
prior needs *new* analyzers for the re-initialised clones, so it takes an analyzer factory
``model -> analyzer`` (:func:`analyzer_factory` builds one from an ``analyzers`` name).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from kvlrp.analysis.measures.profiles import FRAME_COLUMNS
from kvlrp.analysis.measures.shares import clip_shares, frame_relevance
from kvlrp.analysis.measures.temporal import DEFAULT_SIGMA, temporal_relevance
from kvlrp.analysis.runs.values import as_str
from kvlrp.infra.compat import random_state_kept

if TYPE_CHECKING:
    from kvlrp.analysis.explain.layers import LayerRows

TARGETS = ("predicted", "label")
#: Columns of ``frame_relevance_prior.csv``.
PRIOR_COLUMNS = ["step", "seed", "video_id", "clip_index", "position", "relevance", "share"]
#: Columns of ``excluded_clips.csv``: clips whose total relevance was 0 (or not finite).
EXCLUDED_COLUMNS = ["step", "model", "video_id", "clip_index", "reason"]


class Analyzer(Protocol):
    """What kvlrp needs from an analyzer (iNNvestigate's interface)."""

    def analyze(self, x: np.ndarray, neuron_selection: Any = ...) -> np.ndarray: ...


AnalyzerFactory = Callable[[Any], Analyzer]


def analyzer_factory(name: str, bounds: tuple[float, float] | None = None,
                     **kwargs: Any) -> AnalyzerFactory:
    """Factory building ``analyzers.create_analyzer(name, model, ...)``.

    ``bounds`` (the input normalisation's range) is passed as ``low``/``high`` to analyzers that
    take them (``deep_taylor.bounded``).
    """
    import analyzers

    check_analyzer_name(name)
    if name == "deep_taylor.bounded" and bounds is not None:
        kwargs = {"low": bounds[0], "high": bounds[1], **kwargs}

    def build(model: Any) -> Analyzer:
        return analyzers.create_analyzer(name, model, **kwargs)

    return build


def check_analyzer_name(name: str) -> None:
    """A ValueError listing the known names unless ``name`` is an ``analyzers`` name."""
    import analyzers

    known = analyzers.list_analyzers()
    if name not in known:
        raise ValueError(f"unknown analyzer {name!r}; choose one of: {', '.join(known)}")


def reinitialised_clone(model: Any, seed: int) -> Any:
    """The same architecture with freshly initialised weights (``keras.models.clone_model``
    re-runs every initializer), seeded; the global random state is left as it was
    (:func:`kvlrp.infra.compat.random_state_kept`: a prior drawn during training changes
    nothing in it)."""
    import keras

    try:
        with random_state_kept():
            keras.utils.set_random_seed(int(seed))
            return keras.models.clone_model(model)
    except Exception as err:  # subclassed models without get_config cannot be cloned
        raise ValueError(
            f"cannot re-initialise model {model.name!r} for the position prior "
            f"(keras.models.clone_model failed: {err}); use a functional or Sequential model, "
            f"or pass prior_seeds=0"
        ) from err



@dataclass
class FrameRelevance:
    """Result of :func:`explain_frames` for one step."""

    frame: pd.DataFrame
    prior: pd.DataFrame
    excluded: pd.DataFrame
    #: Clips kept for heatmaps and frame flipping: ``clip, relevance, target, video_id, ...``.
    kept: list[dict] = field(default_factory=list)
    n_clips: int = 0
    #: Wall time (s) of the ``analyzer.analyze`` calls on the model explained (not the
    #: prediction pass, not the prior analyzers): ``n_clips / analyze_seconds`` clips/s.
    analyze_seconds: float = 0.0
    #: Clips and seconds of the first of those calls (it includes any graph tracing).
    first_batch_clips: int = 0
    first_batch_seconds: float = 0.0
    #: The intermediate layers' rows, when asked for (set by the run).
    layers: Any = None


@dataclass
class _Batch:
    """One batch of evaluation clips, with each clip's index within its video."""

    clips: np.ndarray
    labels: np.ndarray
    vids: list[str]
    starts: np.ndarray
    clip_idx: list[int]


@dataclass
class _Rows:
    """What :func:`explain_frames` collects over the batches."""

    frame: list[pd.DataFrame] = field(default_factory=list)
    prior: list[pd.DataFrame] = field(default_factory=list)
    excluded: list[tuple] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)
    n_clips: int = 0
    analyze_seconds: float = 0.0
    first_batch_clips: int = 0
    first_batch_seconds: float = 0.0


def explain_frames(
    model: Any,
    batches: Iterable[Mapping[str, Any]],
    analyzer: Analyzer,
    step: int,
    class_names: list[str] | None = None,
    analyzer_name: str | None = None,
    target: str = "predicted",
    prior_analyzers: Mapping[int, Analyzer] | None = None,
    keep: int | Callable[[str, int], bool] = 0,
    temporal_sigma: float | None = DEFAULT_SIGMA,
    layers: LayerRows | None = None,
) -> FrameRelevance:
    """Explain every clip and sum relevance per frame position.

    Parameters
    ----------
    model
        Keras model (input ``[B, L, H, W, C]``, output class probabilities).
    batches
        Dicts with ``clip`` ``[B, L, H, W, C]``, ``label`` ``[B]`` (int class index),
        ``video_id`` ``[B]``, ``clip_start`` ``[B]`` (as from
        ``kvlrp.data.clips.pipeline.eval_dataset``).
        Clips of one video must come in order; ``clip_index`` counts them per video.
    analyzer
        Object with ``analyze(x, neuron_selection)``.
    step
        Step size the clips were cut at (written to the table).
    target
        ``predicted`` (explain the model's top class) or ``label`` (the true class).
    prior_analyzers
        Seed -> analyzer of a re-initialised clone; each explains its own top logit
        (``max_activation``) on the same clips. Empty/None: no prior.
    keep
        Clips to keep with their relevance (for heatmaps and frame flipping): the first ``keep``
        clips, or those for which ``keep(video_id, clip_index)`` is True.
    temporal_sigma
        Threshold of selective relevance (:mod:`kvlrp.analysis.measures.temporal`): the frame
        table's
        ``temporal_relevance`` / ``temporal_share`` columns hold each position's temporal
        relevance and that over the clip's total; None: not computed (NaN).
    layers
        Collects the relevance at intermediate layers (:mod:`kvlrp.analysis.explain.layers`):
        the analyzers are then asked through ``analyze_layers`` for the input and those
        layers in one backward pass each (the time in ``analyze_seconds`` includes them).

    Returns
    -------
    FrameRelevance
        The tables and kept clips, and the wall time spent in ``analyzer.analyze``.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}; got {target!r}")
    name = analyzer_name or type(analyzer).__name__
    prior_analyzers = dict(prior_analyzers or {})
    rows = _Rows()
    clip_counter: dict[str, int] = defaultdict(int)
    for raw in batches:
        batch = _read_batch(raw, clip_counter)
        probs = np.asarray(model(batch.clips, training=False))
        predicted = probs.argmax(axis=1)
        explained = predicted if target == "predicted" else batch.labels
        start = time.perf_counter()
        relevance, got = _analyze(analyzer, batch.clips, explained, layers)
        seconds = time.perf_counter() - start
        if not rows.n_clips:
            rows.first_batch_clips, rows.first_batch_seconds = len(batch.clips), seconds
        rows.analyze_seconds += seconds
        if relevance.shape != batch.clips.shape:
            raise ValueError(
                f"analyzer {name!r} returned shape {relevance.shape}; expected the input's "
                f"shape {batch.clips.shape}"
            )
        _trained_rows(rows, batch, relevance, predicted, explained, step, name, class_names,
                      keep, temporal_sigma)
        if layers is not None:
            layers.add(got, batch.vids, batch.clip_idx, _usable(relevance))
        for seed, prior_analyzer in prior_analyzers.items():
            prelevance, pgot = _analyze(prior_analyzer, batch.clips, "max_activation", layers)
            pfr = frame_relevance(prelevance)
            _prior_rows(rows, batch, pfr, step, seed)
            if layers is not None:
                layers.add(pgot, batch.vids, batch.clip_idx, _usable(prelevance), seed=seed)
        rows.n_clips += len(batch.clips)
    frame = (pd.concat(rows.frame, ignore_index=True) if rows.frame
             else pd.DataFrame(columns=FRAME_COLUMNS))[FRAME_COLUMNS]
    prior = (pd.concat(rows.prior, ignore_index=True) if rows.prior
             else pd.DataFrame(columns=PRIOR_COLUMNS))[PRIOR_COLUMNS]
    return FrameRelevance(frame=frame, prior=prior,
                          excluded=pd.DataFrame(rows.excluded, columns=EXCLUDED_COLUMNS),
                          kept=rows.kept, n_clips=rows.n_clips,
                          analyze_seconds=rows.analyze_seconds,
                          first_batch_clips=rows.first_batch_clips,
                          first_batch_seconds=rows.first_batch_seconds)


def _analyze(analyzer: Any, clips: np.ndarray, selection: Any,
             layers: LayerRows | None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The input relevance of a batch, and the relevance at the probed layers (one backward
    pass: ``analyze_layers``) if ``layers`` is set."""
    if layers is None:
        return np.asarray(analyzer.analyze(clips, neuron_selection=selection)), {}
    got = analyzer.analyze_layers(clips, layers.probe.wanted, neuron_selection=selection)
    return np.asarray(got[layers.probe.input_name]), got


def _usable(relevance: np.ndarray) -> list[int]:
    """Clips whose total input relevance is usable (the others are excluded)."""
    return [int(i) for i in np.flatnonzero(clip_shares(frame_relevance(relevance))[1])]


def _read_batch(batch: Mapping[str, Any], clip_counter: dict[str, int]) -> _Batch:
    """The arrays of one batch; ``clip_counter`` counts the clips seen per video."""
    vids = [as_str(v) for v in np.asarray(batch["video_id"]).tolist()]
    clip_idx = []
    for v in vids:
        clip_idx.append(clip_counter[v])
        clip_counter[v] += 1
    return _Batch(clips=np.asarray(batch["clip"], dtype=np.float32),
                  labels=np.asarray(batch["label"]).astype(np.int64), vids=vids,
                  starts=np.asarray(batch["clip_start"]).astype(np.int64), clip_idx=clip_idx)


def _valid_clips(rows: _Rows, batch: _Batch, fr: np.ndarray, step: int,
                 model: str) -> tuple[np.ndarray, list[int]]:
    """Shares of the per-frame relevance ``fr`` ``[B, L]`` of one model and the clips with a
    usable total; the others are added to the excluded rows under ``model``."""
    shares, valid = clip_shares(fr)
    usable = []
    for i in range(len(fr)):
        if valid[i]:
            usable.append(i)
        else:
            rows.excluded.append((step, model, batch.vids[i], batch.clip_idx[i],
                                  "zero total relevance"))
    return shares, usable


def _trained_rows(rows: _Rows, batch: _Batch, relevance: np.ndarray, predicted: np.ndarray,
                  explained: np.ndarray, step: int, name: str, class_names: list[str] | None,
                  keep: int | Callable[[str, int], bool],
                  temporal_sigma: float | None) -> None:
    """Frame rows (and kept clips) of the model explained, for one batch."""
    fr = frame_relevance(relevance)
    if temporal_sigma is None:
        temporal = None
        tfr = np.full_like(fr, np.nan)
    else:
        temporal = temporal_relevance(relevance, temporal_sigma)
        tfr = frame_relevance(temporal)
    with np.errstate(divide="ignore", invalid="ignore"):
        tshares = tfr / fr.sum(axis=1, keepdims=True)
    length = batch.clips.shape[1]
    shares, usable = _valid_clips(rows, batch, fr, step, "trained")
    for i in usable:
        vid, clip_index = batch.vids[i], batch.clip_idx[i]
        label = _class(batch.labels[i], class_names)
        pred = _class(predicted[i], class_names)
        rows.frame.append(pd.DataFrame({
            "video_id": vid, "label": label, "predicted": pred, "clip_index": clip_index,
            "clip_start": int(batch.starts[i]), "step": step, "position": np.arange(length),
            "relevance": fr[i], "share": shares[i], "analyzer": name,
            "temporal_relevance": tfr[i], "temporal_share": tshares[i],
        }))
        if keep(vid, clip_index) if callable(keep) else len(rows.kept) < keep:
            rows.kept.append({"clip": batch.clips[i], "relevance": relevance[i],
                              "shares": shares[i], "target": int(explained[i]),
                              "video_id": vid, "clip_index": clip_index, "label": label,
                              "predicted": pred, "step": step,
                              "temporal": None if temporal is None else temporal[i]})


def _prior_rows(rows: _Rows, batch: _Batch, pfr: np.ndarray, step: int, seed: int) -> None:
    """Prior rows of one re-initialised copy (``seed``), for one batch."""
    pshares, usable = _valid_clips(rows, batch, pfr, step, f"prior seed {seed}")
    for i in usable:
        rows.prior.append(pd.DataFrame({
            "step": step, "seed": seed, "video_id": batch.vids[i],
            "clip_index": batch.clip_idx[i], "position": np.arange(pfr.shape[1]),
            "relevance": pfr[i], "share": pshares[i],
        }))


def _class(index: int, class_names: list[str] | None) -> str:
    return class_names[int(index)] if class_names else str(int(index))
