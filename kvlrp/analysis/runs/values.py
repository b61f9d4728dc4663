"""Small conversions of values read from tf.data elements."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_str(value: Any) -> str:
    """A string from a Python, NumPy or TensorFlow scalar (bytes are decoded as UTF-8)."""
    value = value.numpy() if hasattr(value, "numpy") else value
    value = value.item() if isinstance(value, np.ndarray) else value
    return value.decode() if isinstance(value, bytes) else str(value)
