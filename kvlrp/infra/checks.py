"""Value checks shared across kvlrp (no kvlrp or TensorFlow imports, so any module may use
them): each refuses a bad value with one line naming the field and saying what is right, as
the caller's error class (``error=``, a ValueError by default)."""

from __future__ import annotations

import numbers

__all__ = ["check_positive", "check_positive_or_all", "is_int"]


def is_int(value: object) -> bool:
    """True for any integral number (Python or numpy int), False for a bool.

    >>> is_int(3), is_int(True), is_int(3.0)
    (True, False, False)
    """
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_positive(name: str, value: object, *, error: type[Exception] = ValueError) -> int:
    """``value`` as a plain int >= 1, else ``error`` naming ``name``.

    >>> check_positive("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive int, got 0
    """
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise error(f"{name} must be a positive int, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def check_positive_or_all(name: str, value: object, *,
                          error: type[Exception] = ValueError) -> int | str:
    """``value`` as a plain int >= 1 or the word ``'all'``, else ``error`` naming ``name``.

    >>> check_positive_or_all("val_clips", "all")
    'all'
    >>> check_positive_or_all("val_clips", 0)
    Traceback (most recent call last):
    ...
    ValueError: val_clips must be a positive int or 'all', got 0
    """
    if isinstance(value, str) and value == "all":
        return "all"
    if not is_int(value) or value < 1:  # type: ignore[operator]
        raise error(f"{name} must be a positive int or 'all', got {value!r}")
    return int(value)  # type: ignore[call-overload]
