"""Where interval-batched MGRIT beats the serial graph on one device.

A model of seconds, not of steps: on a GPU a narrow layer's step is bound by
the host's cost to issue its launches (launch latency), not by arithmetic.
The serial sweep recorded as a graph pays the device's time per step only;
interval-batched MGRIT issues one batched step for step j of every interval
of a level, so it pays ``max(host time to issue it, device time of the
batch)`` per batched step, but needs ``iterations`` cycles of about c + ...
batched steps per level. Everything the model knows is measured (see
``bench/gpu_layer_parallel.py``): the launch latency, the device time of a
batched step over k intervals, ``t0 + t1 k``, and, where given, the host time
to issue a batched step and a batched vector update (pointer uploads and
library overhead included; by default a fixed number of launches).

The sweeps counted are exactly the compiled engine's on one rank
(``batch_intervals=True``, graphs on): per level l < L with factor c, each F
or C-then-F sweep with C-point candidates steps j = 1..c over the intervals
still active at j; the residual, the restriction's coarse step (one batch),
the FAS update and the correction are batched vector updates; the coarsest
level is one replayed graph of its serial chain. Level 0's relaxation and
residual run ``iterations + 1`` times (the last one only checks convergence).
"""

from . import _validation as check


def _counts(n, c, candidates):
    """Tasks of the batched steps j = 1..c of one F-relaxation on a level of
    n intervals owned by one rank (the engine's relax_f_batched)."""
    starts = range(0, n + 1, c)
    out = []
    for j in range(1, c + 1):
        k = 0
        for s in starts:
            e = min(s + c - 1, n)
            p = s + j
            if p <= e or (p == e + 1 and candidates and p <= n and p % c == 0):
                k += 1
        if k == 0:
            break
        out.append(k)
    return out


def gpu_time(n_steps, iterations, launch, step_time, serial_step=None, cfactor=4,
             max_levels=10, min_coarse=2, relax="FCF", cycle="V", launches_per_step=3,
             launches_per_update=2, update_time=None, step_host=None, update_host=None):
    """Predicted seconds of one interval-batched MGRIT solve and of the serial
    graph on one device.

    Parameters
    ----------
    n_steps : int
        Layers N.
    iterations : int >= 1
        MGRIT cycles to the tolerance (measured, e.g. on the host backend:
        the count does not depend on the backend).
    launch : float
        Host seconds to issue one launch (a kernel, a cuBLAS call, a copy).
    step_time : (t0, t1)
        Device seconds of one batched step over k intervals: t0 + t1 k.
    serial_step : float or None
        Device seconds of one step inside the serial graph (default t0 + t1).
    launches_per_step, launches_per_update : int
        Launches a batched step (pointer upload, batched GEMM, element-wise
        pass: 3) and a batched vector update (upload, kernel: 2) issue.
    update_time : float or None
        Device seconds of an element-wise update per interval (default t1 / 4:
        a step's per-interval time covers its product and about four state
        passes).
    step_host, update_host : float or None
        Host seconds to issue one batched step and one batched vector update
        (pointer uploads, library calls and launches together), where they
        were measured; default ``launches_per_step x launch`` and
        ``launches_per_update x launch``.

    Returns a dict: ``serial`` and ``mgrit`` seconds, ``speedup`` (serial over
    MGRIT), ``levels``.
    """
    from .mgrit import CYCLES, MGRIT, hierarchy

    n_steps = check.positive_int(n_steps, "n_steps")
    iterations = check.positive_int(iterations, "iterations")
    launch = check.finite_float(launch, "launch")
    try:
        t0, t1 = (check.finite_float(v, "step_time") for v in step_time)
    except TypeError:
        raise ValueError(f"step_time must be a pair (t0, t1), got {step_time!r}") from None
    if min(launch, t0, t1) < 0:
        raise ValueError("launch and step_time must be >= 0")
    serial_step = t0 + t1 if serial_step is None else check.finite_float(serial_step,
                                                                           "serial_step")
    upd = t1 / 4 if update_time is None else check.finite_float(update_time, "update_time")
    step_host = (launches_per_step * launch if step_host is None
                 else check.finite_float(step_host, "step_host"))
    update_host = (launches_per_update * launch if update_host is None
                   else check.finite_float(update_host, "update_host"))
    if min(upd, step_host, update_host) < 0:
        raise ValueError("update_time, step_host and update_host must be >= 0")
    sweeps = 1 + (len(MGRIT(relax=relax).relax) - 1) // 2
    fcycle = check.choice(cycle, "cycle", CYCLES) == "F"
    h = hierarchy(n_steps, cfactor, max_levels, min_coarse)
    n, cf = h["intervals"], h["cfactor"]
    last = len(n) - 1
    serial = launch + n_steps * serial_step

    def batch(k):  # one batched step over k intervals
        return max(step_host, t0 + t1 * k)

    def update(k):  # one batched vector update over k states
        return max(update_host, upd * k)

    def relax_cost(l, candidates):
        return sum(batch(k) + (update(k) if l > 0 else 0.0)
                   for k in _counts(n[l], cf[l], candidates))

    def down(l):  # relaxation with candidates, then the residual (one sync)
        cpoints = n[l] // cf[l]
        t = sweeps * relax_cost(l, True) + (sweeps - 1) * update(cpoints)
        return t + update(cpoints) + launch

    def coarsest(l):
        return launch + n[l] * (serial_step + (upd if l > 0 else 0.0))

    def cycle_cost(l, f):
        if l == last:
            return coarsest(l)
        t = down(l) if l > 0 else 0.0
        t += 2 * update(n[l + 1] + 1) + batch(n[l + 1])  # injection, coarse steps, FAS
        t += cycle_cost(l + 1, f)
        if f and l + 1 < last:
            t += cycle_cost(l + 1, False)
        return t + update(n[l + 1]) + relax_cost(l, False)  # correction, F-relaxation

    if last == 0:
        mgrit = coarsest(0)
    else:
        mgrit = (iterations + 1) * down(0) + iterations * cycle_cost(0, fcycle)
    return {"serial": serial, "mgrit": mgrit, "speedup": serial / mgrit, "levels": last + 1}


def gpu_crossover(iterations, launch, step_time, serial_step=None, n_steps=None, **options):
    """The smallest depth N (from ``n_steps``, default 16, 32, ..., 2^20) at
    which :func:`gpu_time` predicts interval-batched MGRIT faster than the
    serial graph, or None. ``iterations`` is a number or a function of N."""
    candidates = [2 ** k for k in range(4, 21)] if n_steps is None else sorted(n_steps)
    for N in candidates:
        it = iterations(N) if callable(iterations) else iterations
        if gpu_time(N, it, launch, step_time, serial_step, **options)["speedup"] > 1.0:
            return N
    return None
