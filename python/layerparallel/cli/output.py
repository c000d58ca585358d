"""What commands write: JSON-lines records, atomic text files and the live
history table."""

import json
import math

from .. import _files


def json_value(v):
    if isinstance(v, bool) or v is None or isinstance(v, (str, int)):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if float(f).is_integer() and hasattr(v, "dtype") and v.dtype.kind in "iu":
        return int(f)
    return f if math.isfinite(f) else None  # NaN/Inf are not JSON


def json_line(record):
    return json.dumps({k: json_value(v) for k, v in record.items()}, allow_nan=False)


def write_atomic(path, lines):
    """Write text lines to ``path`` through a temporary file and a rename
    (permissions as ``open`` would give: 0666 less the umask)."""
    def write(f):
        for line in lines:
            f.write(line + "\n")

    _files.write_atomic(path, write, binary=False)


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


class Table:
    """The history table: one row per validation (every validate_every steps and the last)."""

    def __init__(self, classification, mgrit, nested=False, one_shot=False):
        self.cols = [("level", 5, "d", "level")] if nested else []
        self.cols += [("iter", 6, "d", "iteration"), ("loss", 11, ".4e", "loss"),
                     ("grad norm", 10, ".3e", "grad_norm"), ("val loss", 11, ".4e", "val_loss")]
        if classification:
            self.cols.append(("val acc", 8, ".4f", "val_accuracy"))
        if mgrit:
            self.cols += [("MG fwd", 6, "d", "mgrit_forward_iterations"),
                          ("MG adj", 6, "d", "mgrit_adjoint_iterations")]
        if one_shot:  # the cycles per solve, which adaptive one-shot changes
            self.cols.append(("d", 3, "d", "one_shot_cycles"))
        self.cols.append(("time [s]", 9, ".2f", "wall_time"))

    def header(self):
        h = "  ".join(f"{name:>{w}}" for name, w, _, _ in self.cols)
        return h + "\n" + "-" * len(h)

    def row(self, r):
        return "  ".join(f"{fmt(r.get(key), spec):>{w}}" for _, w, spec, key in self.cols)
