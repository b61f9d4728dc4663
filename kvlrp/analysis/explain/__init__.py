"""``kvlrp explain``: frame-position relevance, the position prior, heatmaps, and the run that
writes them (its plan, its steps, its reports)."""

from kvlrp.analysis.explain.frames import analyzer_factory, explain_frames, reinitialised_clone

__all__ = ["analyzer_factory", "explain_frames", "reinitialised_clone"]
