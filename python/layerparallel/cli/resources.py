"""Whether a run fits in memory, decided before anything large is allocated."""

import os

from .ranks import agree

# Parameter-sized vectors a rank surely keeps besides the full vector that
# initialization builds: theta, the gradient, and the optimizer's own state.
# A lower bound: a run refused by it cannot fit.
_BASE_VECTORS = 2
_OPTIMIZER_VECTORS = {"lbfgs": lambda memory: 2 * memory, "adam": lambda memory: 2,
                      "sgd": lambda memory: 1, "gd": lambda memory: 0}


def available_bytes():
    """Memory the OS can give now (Linux MemAvailable), else the physical memory, else None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def estimate(net, rows, optimizer, memory, cfactor=1):
    """(parameter bytes, state bytes) one rank needs at least: the whole
    parameter vector once (initialization), this rank's part for theta, the
    gradient and the optimizer, and the states of its layers for ``rows``
    samples (every ``cfactor``-th layer's with MGRIT storage "C")."""
    local = max(off + _prod(shape) for off, shape in net._layout.values())
    vectors = _BASE_VECTORS + _OPTIMIZER_VECTORS[optimizer](memory)
    params = 8 * (net.n_params + vectors * local)
    per_sample = getattr(net, "state_size", None) or net.width  # a conv net's C H W
    states = 8 * rows * per_sample * (net.n_local_layers // cfactor + 1)
    return params, states


def _prod(shape):
    n = 1
    for s in shape:
        n *= int(s)
    return n


def _gb(n):
    return f"{n / 1e9:.1f} GB"


def check_memory(net, samples, args, comm):
    """UsageError on every rank when some rank's estimate exceeds what its machine has."""
    rows = samples if args.batch_size is None else min(samples, args.batch_size)
    cf = args.cfactor[0] if isinstance(args.cfactor, list) else args.cfactor
    cf = cf if args.mgrit and args.storage == "C" else 1
    params, states = estimate(net, rows, args.optimizer, args.memory, cf)
    have = available_bytes()
    error = None
    if have is not None and params + states > have:
        size = (f"--channels {net.channels}" if hasattr(net, "channels")
                else f"--width {net.width}")
        error = (f"--layers {net.n_layers} {size} needs at least "
                 f"{_gb(params + states)} per rank ({net.n_params:,} parameters: "
                 f"{_gb(params)} with the {args.optimizer} state; states of {rows} "
                 f"samples: {_gb(states)}), but only {_gb(have)} is available")
    agree(comm, error)
