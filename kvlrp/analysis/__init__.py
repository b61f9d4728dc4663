"""The paper's method: frame-position relevance, border score, position prior, stride accuracy,
frame flipping, heatmaps, plots and the markdown report.

Pure table builders (:mod:`~kvlrp.analysis.shares`, :mod:`~kvlrp.analysis.bootstrap`,
:mod:`~kvlrp.analysis.profiles`, :mod:`~kvlrp.analysis.accuracy`) need only numpy/pandas; the
runners (:mod:`~kvlrp.analysis.explain`, :mod:`~kvlrp.analysis.strides`,
:mod:`~kvlrp.analysis.flipping`) take a Keras model and any analyzer object with iNNvestigate's
``analyze(x, neuron_selection)`` method.
"""

from kvlrp.analysis.bootstrap import bootstrap_indices, percentile_interval
from kvlrp.analysis.shares import border_score, clip_shares, frame_relevance

__all__ = [
    "border_score",
    "bootstrap_indices",
    "clip_shares",
    "frame_relevance",
    "percentile_interval",
]
