"""Pick a ``tf.distribute`` strategy by name: default, ``mirrored``, ``multiworker``."""

from __future__ import annotations

import json
import os

import tensorflow as tf

#: Names accepted by :func:`resolve_strategy`.
STRATEGY_NAMES = ("default", "mirrored", "multiworker")

TF_CONFIG_EXAMPLE = (
    'TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\''
)


def resolve_strategy(strategy: str | tf.distribute.Strategy | None) -> tf.distribute.Strategy:
    """Return the strategy for ``strategy``.

    Parameters
    ----------
    strategy
        ``None``/``"default"``: the current (default: single-device) strategy.
        ``"mirrored"``: ``MirroredStrategy`` over all local GPUs, or over all logical CPU
        devices if there is no GPU. ``"multiworker"``: ``MultiWorkerMirroredStrategy`` with the
        cluster read from the ``TF_CONFIG`` environment variable. A strategy object is
        returned unchanged.
    """
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if strategy in (None, "default"):
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        if gpus:
            return tf.distribute.MirroredStrategy(gpus)
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(
            cpus, cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    if strategy == "multiworker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(
        f"unknown strategy {strategy!r}; use one of {STRATEGY_NAMES} or a tf.distribute.Strategy"
    )


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes files (the only worker, or the chief / worker 0)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return not has_chief and task_type == "worker" and task_id == 0


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ValueError(
            "strategy 'multiworker' needs the TF_CONFIG environment variable describing the "
            f"cluster and this process's task, e.g. {TF_CONFIG_EXAMPLE}"
        )
    try:
        config = json.loads(raw)
        config["cluster"]
        config["task"]["type"], config["task"]["index"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"TF_CONFIG is not valid ({err!r}); expected e.g. {TF_CONFIG_EXAMPLE}"
        ) from err
