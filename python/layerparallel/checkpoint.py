"""Checkpoints of a training run, written atomically (write, fsync, rename).

One file per rank, ``DIR/checkpoint.rank<r>.npz``: this rank's parameters, the
optimizer's state, the data-order RNG state, the MGRIT solvers' warm states and
the history so far. A crash during a write leaves the previous checkpoint
intact; a corrupt or mismatched one is a CheckpointError, on every rank alike.
"""

import json
import os
import tempfile

import numpy as np

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or from a different run."""


def path_for(directory, rank):
    return os.path.join(directory, f"checkpoint.rank{rank}.npz")


def _flatten(prefix, state, out):
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(name + ".", value, out)
        elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            out[name + ".__list__"] = np.array(len(value))
            for i, v in enumerate(value):
                out[f"{name}.{i}"] = v
        else:
            out[name] = np.asarray(value)


def _unflatten(prefix, arrays):
    state = {}
    keys = [k[len(prefix):] for k in arrays if k.startswith(prefix)]
    lists = {k[: -len(".__list__")] for k in keys if k.endswith(".__list__")}
    for k in sorted(keys):
        if k.endswith(".__list__"):
            continue
        head = k.split(".", 1)[0]
        if head in lists:
            continue
        if "." in k:
            state.setdefault(head, None)
        else:
            v = arrays[prefix + k]
            state[k] = v.item() if v.ndim == 0 else v
    for head in {k.split(".", 1)[0] for k in keys if "." in k} - lists:
        state[head] = _unflatten(prefix + head + ".", arrays)
    for name in lists:
        n = int(arrays[prefix + name + ".__list__"])
        state[name] = [arrays[f"{prefix}{name}.{i}"] for i in range(n)]
    return state


def save(directory, rank, *, signature, iteration, theta, optimizer_state, rng_state,
         history, warm_state=None, carried=None):
    """Write this rank's checkpoint atomically."""
    os.makedirs(directory, exist_ok=True)
    arrays = {
        "format": np.array(FORMAT),
        "signature": np.array(json.dumps(signature, sort_keys=True)),
        "iteration": np.array(iteration),
        "theta": theta,
        "rng_state": np.array(json.dumps(rng_state)),
        "history": np.array(json.dumps(history)),
    }
    _flatten("opt.", optimizer_state, arrays)
    if warm_state is not None:
        arrays["warm_batch"] = np.array(warm_state[0])
        arrays["warm_states"] = warm_state[1]
    if carried is not None:  # the loss and gradient the next step starts from
        arrays["carried_loss"] = np.array(carried[0])
        arrays["carried_grad"] = carried[1]
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path_for(directory, rank))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(directory, rank, signature):
    """This rank's checkpoint as a dict; CheckpointError if missing, corrupt or foreign."""
    path = path_for(directory, rank)
    if not os.path.exists(path):
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable: {exc}") from None
    try:
        if int(arrays["format"]) != FORMAT:
            raise CheckpointError(f"checkpoint {path} has format {int(arrays['format'])}")
        saved = json.loads(str(arrays["signature"]))
        if saved != json.loads(json.dumps(signature, sort_keys=True)):
            diff = {k: (saved.get(k), signature.get(k)) for k in set(saved) | set(signature)
                    if saved.get(k) != signature.get(k)}
            raise CheckpointError(f"checkpoint {path} is from a different run: {diff}")
        out = {
            "iteration": int(arrays["iteration"]),
            "theta": arrays["theta"],
            "rng_state": json.loads(str(arrays["rng_state"])),
            "history": json.loads(str(arrays["history"])),
            "optimizer_state": _unflatten("opt.", arrays),
            "warm_state": None,
            "carried": None,
        }
        if "carried_grad" in arrays:
            out["carried"] = (float(arrays["carried_loss"]), arrays["carried_grad"])
        if "warm_states" in arrays:
            out["warm_state"] = (int(arrays["warm_batch"]), arrays["warm_states"])
        return out
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks {exc}") from None
