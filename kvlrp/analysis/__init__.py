"""The paper's method: frame-position relevance, border score, position prior, stride accuracy,
frame flipping, heatmaps, plots and the markdown report.

Pure table builders (:mod:`~kvlrp.analysis.measures.shares`,
:mod:`~kvlrp.analysis.measures.bootstrap`,
:mod:`~kvlrp.analysis.measures.profiles`, :mod:`~kvlrp.analysis.measures.accuracy`) need only
numpy/pandas; the
runners (:mod:`~kvlrp.analysis.explain.frames`, :mod:`~kvlrp.analysis.strides.predictions`,
:mod:`~kvlrp.analysis.measures.flipping`) take a Keras model and any analyzer object with
iNNvestigate's
``analyze(x, neuron_selection)`` method; :func:`run_explain` / :func:`run_strides` run them over
a shard folder and write the reports (what ``kvlrp explain`` / ``kvlrp strides`` call);
:class:`BorderEffectCallback` measures the border effect while a model trains.
"""

from typing import Any

from kvlrp.analysis.explain.config import ExplainConfig
from kvlrp.analysis.explain.frames import analyzer_factory, explain_frames, reinitialised_clone
from kvlrp.analysis.explain.layer_map import frame_centres
from kvlrp.analysis.explain.run import run_explain
from kvlrp.analysis.measures.accuracy import best_step, stride_table, video_predictions
from kvlrp.analysis.measures.bootstrap import bootstrap_indices, percentile_interval
from kvlrp.analysis.measures.flipping import frame_flipping_table
from kvlrp.analysis.measures.layer_profiles import frames_of_layer, summarize_layers
from kvlrp.analysis.measures.profiles import summarize_profiles
from kvlrp.analysis.measures.shares import border_score, clip_shares, frame_relevance
from kvlrp.analysis.report.markdown import build_report
from kvlrp.analysis.strides.config import StridesConfig
from kvlrp.analysis.strides.predictions import stride_predictions
from kvlrp.analysis.strides.run import run_strides

__all__ = [
    "BorderEffectCallback", "ExplainConfig", "StridesConfig", "analyzer_factory", "best_step",
    "bootstrap_indices", "border_clips", "border_score", "build_report",
    "clip_shares", "explain_frames", "frame_centres", "frame_flipping_table",
    "frame_relevance", "frames_of_layer",
    "percentile_interval", "reinitialised_clone", "run_explain", "run_strides",
    "stride_predictions", "stride_table", "summarize_layers", "summarize_profiles",
    "video_predictions",
]


def __getattr__(name: str) -> Any:
    """``BorderEffectCallback`` and ``border_clips`` on first use (a Keras callback class needs
    Keras, which importing ``kvlrp.analysis`` does not load)."""
    if name in ("BorderEffectCallback", "border_clips"):
        from kvlrp.analysis.explain import callback

        return getattr(callback, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
