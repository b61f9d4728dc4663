"""Argument types for the command line: each refuses a bad value with a message saying what is
right (argparse then prints ``kvlrp COMMAND: error: argument --x: ...`` and exits with 2); and
the options several commands share (:func:`add_precision_option`)."""

from __future__ import annotations

import argparse


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def positive_int(value: str) -> int:
    """An int >= 1."""
    n = _int(value)
    if n is None or n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value!r}")
    return n


def non_negative_int(value: str) -> int:
    """An int >= 0."""
    n = _int(value)
    if n is None or n < 0:
        raise argparse.ArgumentTypeError(f"expected an int >= 0, got {value!r}")
    return n


def count_or_all(value: str) -> int | str:
    """A positive int or the word ``all`` (clips per video)."""
    if value == "all":
        return value
    n = _int(value)
    if n is None or n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int or 'all', got {value!r}")
    return n


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("nan")  # refused by every range check below


def positive_float(value: str) -> float:
    """A finite float > 0."""
    x = _float(value)
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {value!r}")
    return x


def fraction(value: str) -> float:
    """A float in [0, 1)."""
    x = _float(value)
    if not 0 <= x < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {value!r}")
    return x


#: ``--precision`` choices (``kvlrp.models.precision.PRECISIONS``, listed here so that building
#: the parser does not import Keras).
PRECISIONS = ("float32", "bfloat16", "float16")


def add_precision_option(parser: argparse.ArgumentParser, default: str = "float32") -> None:
    """Add ``--precision float32|bfloat16|float16`` (the training precision) to ``parser``."""
    parser.add_argument(
        "--precision", default=default, choices=PRECISIONS,
        help=f"training precision (default {default}): bfloat16 and float16 are Keras mixed "
             "precision (half-precision computation, float32 weights and classifier); "
             "bfloat16 needs a GPU of compute capability >= 8.0 or a CPU with AVX512_BF16 / "
             "AMX and oneDNN kernels (elsewhere training falls back to float32 and says so), "
             "float16 a GPU. The "
             "saved model computes in float32: explain and strides always run in float32")
