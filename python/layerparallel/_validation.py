"""Argument checks shared by the public API.

Every check raises ValueError with a message that names the offending
argument, before any array reaches the compiled core.
"""

import math
import numbers

import numpy as np


def positive_int(value, name, maximum=None):
    """``value`` as an int >= 1 (and <= maximum), else ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value!r}")
    return int(value)


def finite_float(value, name, minimum=None, strictly_positive=False):
    """``value`` as a finite float, optionally >= minimum or > 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if strictly_positive and value <= 0.0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return value


def choice(value, name, options):
    """``value`` if it is one of ``options`` (strings), else ValueError listing them."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def float_array(a, name, ndim, columns=None, rows=None, dtype=np.float64):
    """A C-contiguous ``dtype`` (float64 or float32) copy-or-view of ``a`` with
    the given shape, all finite.

    Real numeric input (ints, other floats, lists) is converted: these arrays
    are only read, so a converted copy is harmless (float64 into float32 rounds
    each entry once; values beyond float32's range are refused). Anything else
    is refused.
    """
    try:
        arr = np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} is not an array of numbers: {exc}") from None
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.floating)
        or np.issubdtype(arr.dtype, np.integer)
        or arr.dtype == np.bool_
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {arr.shape}")
    if ndim >= 1 and arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if columns is not None and arr.shape[1] != columns:
        raise ValueError(f"{name} must have {columns} columns, got shape {arr.shape}")
    if rows is not None and arr.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {arr.shape}")
    src = arr
    with np.errstate(over="ignore"):
        arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.isfinite(arr).all():
        if arr is not src and np.isfinite(src).all():
            raise ValueError(f"{name} has values beyond the range of {np.dtype(dtype).name}")
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def seed(value, name="seed"):
    """A reproducible seed: a nonnegative int (None would differ per call and per rank)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be a nonnegative integer, got {value!r}")
    return int(value)


def cfactors(value, name="cfactor"):
    """Coarsening factors as a non-empty list of ints >= 2 (an int or a per-level list)."""
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"{name} must not be empty")
        cf = [positive_int(c, name) for c in value]
    else:
        cf = [positive_int(value, name)]
    if min(cf) < 2:
        raise ValueError(f"{name} must be >= 2, got {value!r}")
    return cf
