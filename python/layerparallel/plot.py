"""Plots of training histories (the JSON-lines logs of ``layerparallel train --log``).

    from layerparallel.plot import plot_history, read_log
    plot_history([read_log("a.jsonl"), read_log("b.jsonl")], ["a", "b"],
                 x="wall_time", out="fig.png")

matplotlib is needed only when :func:`plot_history` is called (the optional
extra ``pip install 'layerparallel[plot]'``); this module imports without it.
"""

import json
import math
import os

__all__ = ["plot_history", "read_log", "default_keys", "KEYS"]

# Keys a log record may hold (lp.History.KEYS) with their axis labels.
KEYS = {
    "iteration": "iteration",
    "loss": "training loss",
    "grad_norm": "gradient norm",
    "step_size": "step size",
    "evaluations": "loss evaluations",
    "train_accuracy": "training accuracy",
    "val_loss": "validation loss",
    "val_accuracy": "validation accuracy",
    "mgrit_forward_iterations": "MGRIT iterations (forward)",
    "mgrit_adjoint_iterations": "MGRIT iterations (adjoint)",
    "mgrit_forward_residual": "MGRIT residual (forward)",
    "mgrit_adjoint_residual": "MGRIT residual (adjoint)",
    "wall_time": "wall time [s]",
}
X_KEYS = ("iteration", "wall_time")
# Drawn on a logarithmic axis when all values are positive.
_LOG_KEYS = {"loss", "grad_norm", "val_loss", "step_size", "mgrit_forward_residual",
             "mgrit_adjoint_residual"}


def read_log(path):
    """The records (one dict per line) of a JSON-lines log; ValueError naming the
    file and line if one is not a JSON object, OSError if it cannot be read."""
    records = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(rec, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
            records.append(rec)
    if not records:
        raise ValueError(f"{path}: the log is empty")
    return records


def _number(v):
    return (isinstance(v, (int, float)) and not isinstance(v, bool)
            and math.isfinite(float(v)))


def _series(records, x, y):
    xs, ys = [], []
    for r in records:
        if _number(r.get(x)) and _number(r.get(y)):
            xs.append(float(r[x]))
            ys.append(float(r[y]))
    return xs, ys


def default_keys(records_list):
    """The training loss, and the validation accuracy where a log has one
    (classification), else the validation loss where one has that."""
    keys = ["loss"]
    for extra in ("val_accuracy", "val_loss"):
        if any(_number(r.get(extra)) for recs in records_list for r in recs):
            keys.append(extra)
            break
    return keys


def plot_history(records_list, labels, x="iteration", out="history.png", y=None,
                 title=None):
    """Draw one panel per key in ``y`` (default: :func:`default_keys`) against
    ``x`` ("iteration" or "wall_time"), one line per history, and save the
    figure to ``out`` (the format from its suffix: png, pdf, svg, ...).

    ``records_list``: a list of histories, each a list of per-iteration dicts
    (``lp.History.records()`` or :func:`read_log`); ``labels``: one legend
    entry per history. Returns ``out``. ImportError without matplotlib;
    ValueError for unknown keys or a key that no history has values of.
    """
    records_list = [list(r) for r in records_list]
    labels = [str(s) for s in labels]
    if not records_list:
        raise ValueError("plot_history needs at least one history")
    if len(labels) != len(records_list):
        raise ValueError(f"{len(labels)} labels for {len(records_list)} histories")
    if x not in X_KEYS:
        raise ValueError(f"x must be one of {', '.join(X_KEYS)}; got {x!r}")
    keys = default_keys(records_list) if not y else ([y] if isinstance(y, str) else list(y))
    for k in keys:
        if k not in KEYS or k in X_KEYS:
            choices = ", ".join(k for k in KEYS if k not in X_KEYS)
            raise ValueError(f"unknown y {k!r}; choose from {choices}")
        if not any(_series(recs, x, k)[0] for recs in records_list):
            raise ValueError(f"no history has values of {k!r}")

    import matplotlib  # noqa: F401  (ImportError here when it is missing)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.2 * len(keys)), layout="constrained") \
        if _has_layout_kw() else Figure(figsize=(6.4, 3.2 * len(keys)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, sharex=True, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        positive = True
        for recs, label in zip(records_list, labels):
            xs, ys = _series(recs, x, key)
            if not xs:
                continue
            positive = positive and min(ys) > 0
            ax.plot(xs, ys, marker="." if len(xs) <= 40 else None, label=label)
        if key in _LOG_KEYS and positive:
            ax.set_yscale("log")
        ax.set_ylabel(KEYS[key])
        ax.grid(True, alpha=0.3)
        if len(records_list) > 1:
            ax.legend()
    axes[-1].set_xlabel(KEYS[x])
    if title:
        axes[0].set_title(title)
    directory = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(directory):
        raise OSError(f"no such directory: {directory}")
    fig.savefig(out, dpi=120)
    return out


def _has_layout_kw():
    import matplotlib

    try:
        major, minor = (int(p) for p in matplotlib.__version__.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (3, 5)
