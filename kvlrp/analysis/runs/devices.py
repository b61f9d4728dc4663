"""``--strategy mirrored`` for inference: every batch split over the local devices.

Explaining and predicting need no gradient exchange between replicas, so instead of
``strategy.run`` each device gets a contiguous slice of the batch (run in its own thread, under
``tf.device``) and the results are concatenated in order: the same values as one device, in the
same order. The devices are the ones ``tf.distribute.MirroredStrategy`` would use
(:func:`kvlrp.training.strategy.resolve_strategy`): all GPUs, else all logical CPU devices.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: ``--strategy`` values of ``kvlrp explain`` / ``kvlrp strides``.
STRATEGIES = ("default", "mirrored")


def strategy_devices(strategy: str | None) -> list[str] | None:
    """Devices to split batches over for ``strategy`` (None: one device, no splitting)."""
    if strategy in (None, "default"):
        return None
    if strategy != "mirrored":
        raise ValueError(f"unknown --strategy {strategy!r}; choose one of {STRATEGIES}")
    from kvlrp.training.strategy import resolve_strategy

    devices = list(resolve_strategy("mirrored").extended.worker_devices)
    log.info("splitting each batch over %d device(s): %s", len(devices), ", ".join(devices))
    return devices


def split_call(fn: Callable[..., Any], devices: Sequence[str], x: np.ndarray,
               *per_sample: Any, used: Counter | None = None) -> np.ndarray:
    """``fn(x_part, *per_sample_parts)`` on each device for its slice of the batch, concatenated.

    Arguments in ``per_sample`` that are arrays with the batch's length are sliced like ``x``;
    others are passed unchanged. ``used`` counts the device each result was computed on.
    """
    import tensorflow as tf

    n = len(x)
    bounds = np.linspace(0, n, min(len(devices), n) + 1).round().astype(int) if n else [0, 0]
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def part(arg: Any, s: slice) -> Any:
        return arg[s] if isinstance(arg, np.ndarray) and arg.ndim and len(arg) == n else arg

    def run(i: int):
        with tf.device(devices[i]):
            out = fn(x[slices[i]], *(part(a, slices[i]) for a in per_sample))
            if used is not None:
                used[getattr(out, "device", None) or devices[i]] += 1
            return np.asarray(out)

    if len(slices) <= 1:
        return run(0) if slices else np.asarray(fn(x, *per_sample))
    with ThreadPoolExecutor(len(slices)) as pool:
        results = list(pool.map(run, range(len(slices))))
    return np.concatenate(results)


class SplitModel:
    """A Keras model called on a batch split over ``devices`` (for prediction only)."""

    def __init__(self, model: Any, devices: Sequence[str]):
        self.model, self.devices = model, list(devices)
        self.used: Counter = Counter()

    def __call__(self, x: Any, training: bool = False) -> np.ndarray:
        return split_call(lambda part: self.model(part, training=training), self.devices,
                          np.asarray(x), used=self.used)


class SplitAnalyzer:
    """An analyzer whose ``analyze`` splits the batch (and per-sample selections) over
    ``devices``."""

    def __init__(self, analyzer: Any, devices: Sequence[str]):
        self.analyzer, self.devices = analyzer, list(devices)
        self.used: Counter = Counter()

    def analyze(self, x: Any, neuron_selection: Any = "max_activation") -> np.ndarray:
        return split_call(lambda part, sel: self.analyzer.analyze(part, neuron_selection=sel),
                          self.devices, np.asarray(x), _as_selection(neuron_selection),
                          used=self.used)


def _as_selection(selection: Any) -> Any:
    return np.asarray(selection) if isinstance(selection, (list, tuple, np.ndarray)) \
        else selection
