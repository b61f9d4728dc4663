"""Checks shared by :class:`~kvlrp.analysis.explain.config.ExplainConfig` and
:class:`~kvlrp.analysis.strides.config.StridesConfig` (one message per kind of bad option), and
the ``config=`` or keyword options that ``run_explain`` / ``run_strides`` accept."""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from kvlrp.analysis.runs.partition import Worker
from kvlrp.infra.checks import check_positive, is_int

C = TypeVar("C")

__all__ = ["check_choice", "check_count", "check_devices",
           "check_int", "check_positive", "check_sigma", "check_steps", "check_worker",
           "config_from"]


def check_steps(steps: Iterable[Any]) -> tuple[int, ...]:
    """``steps`` as a tuple of ints, each >= 1, at least one; else a ValueError."""
    values = [int(s) for s in steps]
    if not values or min(values) < 1:
        raise ValueError(f"steps must be positive ints; got {values}")
    return tuple(values)


def check_count(name: str, value: object) -> int:
    """``value`` as an int >= 0, else a ValueError naming ``name``."""
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0, got {value!r}")
    return int(value)


def check_int(name: str, value: object) -> int:
    """``value`` as an int (any integral number, not a bool), else a ValueError naming
    ``name``."""
    if not is_int(value):
        raise ValueError(f"{name} must be an int, got {value!r}")
    return int(value)


def check_choice(name: str, value: object, choices: Sequence[Any]) -> None:
    """A ValueError naming ``name`` and the ``choices`` unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}; got {value!r}")


def check_sigma(name: str, value: object) -> float | None:
    """``value`` as a finite float >= 0 (None kept), else a ValueError naming ``name``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not 0 <= float(value) < math.inf:
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
    return float(value)


def check_worker(worker: Worker | None) -> Worker:
    """``worker``, or the only worker for None; a TypeError for anything else."""
    if worker is None:
        return Worker()
    if not isinstance(worker, Worker):
        raise TypeError(f"worker must be a kvlrp.analysis.runs.partition.Worker or None, got "
                        f"{type(worker).__name__}")
    return worker


def check_devices(devices: Iterable[str] | None) -> tuple[str, ...] | None:
    """``devices`` as a tuple of device names (None, or empty: one device)."""
    if devices is None:
        return None
    if isinstance(devices, str):
        raise TypeError(f"devices must be a list of device names, got the string {devices!r}")
    names = tuple(str(d) for d in devices)
    return names or None


def config_from(cls: type[C], config: C | None, options: Mapping[str, Any],
                caller: str) -> C:
    """The config of a run given either as ``config=`` or as keyword ``options`` (the
    fields of ``cls``), never both."""
    if config is not None:
        if not isinstance(config, cls):
            raise TypeError(f"{caller}: config must be a {cls.__name__}, got "
                            f"{type(config).__name__}")
        if options:
            raise TypeError(f"{caller}: give the options either as config= or as keywords, "
                            f"not both (got config= and {', '.join(sorted(options))})")
        return config
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise TypeError(f"{caller}: unknown option(s) {', '.join(unknown)}; the options are "
                        f"the fields of {cls.__name__}: {', '.join(names)}")
    return cls(**options)
