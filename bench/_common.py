"""Shared helpers of the Python benchmarks: timing and machine-readable rows."""

import json
import sys
import time

import numpy as np


def median_time(fn, reps=None, min_seconds=0.5, warmup=2):
    """Median wall time of fn() over max(reps, as many as fit in min_seconds)."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while (reps is None or len(times) < reps) and (
        len(times) < 5 or time.perf_counter() - start < min_seconds
    ):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if reps is not None and len(times) >= reps:
            break
    return float(np.median(times)), len(times)


def emit(**row):
    """One JSON row on stdout (logs go to stderr)."""
    print(json.dumps(row), flush=True)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def use_threads(threads):
    """Run the package's core and numpy's BLAS with `threads` threads (None: the
    package's default); returns the count."""
    import layerparallel as lp
    if threads is None:
        threads = lp.get_num_threads()
    lp.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(threads)
    except ImportError:
        log("threadpoolctl missing: numpy's BLAS runs with its default threads")
    return threads
