"""Argument types: each parses one command-line (or TOML) value or raises
argparse.ArgumentTypeError with a message that names the rule."""

import argparse
import math


def positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def nonnegative_int(text):
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a nonnegative integer, got {text!r}")
    return v


def real(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return v


def positive_float(text):
    v = real(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return v


def nonnegative_float(text):
    v = real(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def fraction(text):
    v = real(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return v


def batch_block(text):
    """'auto' (None) or rows >= 0 (0: the whole batch)."""
    if str(text).lower() == "auto":
        return None
    return nonnegative_int(text)


def optional_tol(text):
    if str(text).lower() in ("none", "off", "0"):
        return None
    return positive_float(text)


def int_list(text, minimum=1):
    """Comma-separated integers >= minimum."""
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum:
        kind = "positive integers" if minimum == 1 else f"integers >= {minimum}"
        raise argparse.ArgumentTypeError(f"must be comma-separated {kind}, got {text!r}")
    return values


def cfactor(text):
    """An integer >= 2 or a comma-separated list of them (one per level)."""
    try:
        values = int_list(text, minimum=2)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 2 or a comma-separated list of them, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def schedule(text):
    """Optimizer steps per nested level: positive integers, comma-separated."""
    values = int_list(text, minimum=1)
    return values


def grid_shape(text):
    """LxD: layer ranks x data ranks, e.g. 2x2."""
    parts = str(text).lower().split("x")
    try:
        layers, data = (int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be LxD (layer ranks x data ranks), e.g. 2x2; "
                                         f"got {text!r}") from None
    if layers < 1 or data < 1:
        raise argparse.ArgumentTypeError(f"must be positive sizes LxD, got {text!r}")
    return layers, data


def device(text):
    """--device: cpu, cuda or cuda:K (whether it can be used is checked later,
    on every rank alike, with a clear error)."""
    import re

    value = text.strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda or cuda:K, got {text!r}")
    return value
