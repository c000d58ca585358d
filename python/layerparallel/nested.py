"""Nested iteration: train shallow, refine the layers, train again.

A network with N / 2^(L-1) layers is trained first; then its layers are
doubled by interpolation in layer-time and training continues, until N layers.
Histories are expressed in work units: 1 work unit = the wall time of one
optimizer iteration on the finest level, measured in the same run.
"""

import time

import numpy as np

from . import _collective as collective
from . import _validation as check
from .mgrit import MGRIT
from .network import ODEResNet
from .optim import create as create_optimizer
from .params import Params
from .train import History, train

INTERPOLATIONS = ("constant", "linear")


def refine_layers(W, interp):
    """Layer-time interpolation of per-layer arrays (axis 0) from N to 2N layers.

    Layer n acts on [t_n, t_{n+1}], t_n = n h. "constant": theta_2n =
    theta_2n+1 = theta_n (exact for layer-constant weights). "linear":
    theta_2n = theta_n, theta_2n+1 = (theta_n + theta_n+1)/2, the last by
    linear extrapolation (exact for weights linear in layer-time).
    """
    check.choice(interp, "interp", INTERPOLATIONS)
    W = np.asarray(W)
    N = W.shape[0]
    fine = np.empty((2 * N,) + W.shape[1:], dtype=W.dtype)
    fine[0::2] = W
    if interp == "constant" or N == 1:
        fine[1::2] = W
    else:
        fine[1:-1:2] = 0.5 * (W[:-1] + W[1:])
        fine[-1] = W[-1] + 0.5 * (W[-1] - W[-2])
    return fine


def refine_vector(vec, coarse_layout, fine_layout, interp):
    """A full (gathered) parameter-shaped vector refined from coarse to fine
    layout, in its own dtype (float32 stays float32; anything else float64)."""
    vec = np.asarray(vec)
    dtype = np.float32 if vec.dtype == np.float32 else np.float64
    coarse = Params(coarse_layout, np.ascontiguousarray(vec, dtype=dtype))
    fine = Params(fine_layout, dtype=dtype)
    for name in ("W_in", "b_in", "W_out", "b_out"):  # opening layer and head carry over
        getattr(fine, name)[...] = getattr(coarse, name)
    fine.W[...] = refine_layers(coarse.W, interp)
    fine.b[...] = refine_layers(coarse.b, interp)
    return fine.data


def _with_layers(net, n_layers):
    """``net`` with ``n_layers`` residual layers and everything else the same."""
    if hasattr(net, "with_layers"):
        return net.with_layers(n_layers)
    return ODEResNet(net.n_in, net.width, n_layers, net.n_out, T=net.T,
                     activation=net.activation, opening=net.opening, head=net.head,
                     gamma_tik=net.gamma_tik, gamma_ddt=net.gamma_ddt, gamma_out=net.gamma_out,
                     eta=net.eta, comm=net.comm, device=net.device, dtype=net.dtype)


def refine(net, theta, interp="constant"):
    """(fine_net, fine_theta): ``net`` with twice the layers, same T and
    everything else, and theta interpolated in layer-time (works at any rank
    count: the layer distribution follows the new depth)."""
    fine = _with_layers(net, 2 * net.n_layers)
    full = theta.gather() if isinstance(theta, Params) else np.asarray(theta)
    return fine, fine.scatter(refine_vector(full, net._global_layout, fine._global_layout,
                                            interp))


def _refine_optimizer_state(optimizer, coarse_net, fine_net, interp):
    """Interpolate the optimizer's parameter-shaped state arrays like the parameters."""
    state = optimizer.state_dict()
    n_coarse = coarse_net.n_params if not coarse_net.distributed else None
    out = {}
    for key, value in state.items():
        arr = np.asarray(value)
        if n_coarse is not None and arr.ndim >= 1 and arr.shape[-1] == n_coarse and arr.size:
            rows = arr.reshape(-1, n_coarse)
            refined = [refine_vector(r, coarse_net._global_layout, fine_net._global_layout,
                                     interp) for r in rows]
            out[key] = np.array(refined).reshape(arr.shape[:-1] + (fine_net.n_params,))
        else:
            out[key] = value
    optimizer.load_state_dict(out)


def nested_train(net, X, Y, optimizer, levels=3, schedule=(200, 125, 75), interp="constant",
                 init="uniform", magnitude=0.0, outer="glorot", seed=0, solver=None,
                 one_shot=None,
                 refine_cycles=10, refine_steps=3, carry_optimizer=False, validation=None,
                 validate_every=10, **train_kwargs):
    """Nested-iteration training; returns (fine_net, theta, history).

    ``net`` is the finest network (N layers); the first level trains
    N / 2^(levels-1) layers, initialized by ``net.init(init, seed, magnitude,
    outer)`` (default: residual layers uniform in [-magnitude, magnitude], 0
    giving zeros, opening layer and head Glorot).
    ``schedule`` gives each level's optimizer iterations m^(l), coarsest first.
    With ``solver`` and ``one_shot`` (layer-parallel one-shot training), the
    first ``refine_steps`` steps after each refinement use ``refine_cycles``
    MGRIT cycles so the inexact gradients do not spoil the interpolated start.
    The optimizer's state is reset at each refinement by default: L-BFGS
    curvature pairs and Adam moments belong to the coarser discretization;
    ``carry_optimizer=True`` interpolates them like the weights instead (one
    rank only).

    With ``grad_tol`` (passed to lp.train) a level ends once its gradient
    norm is at most grad_tol, and the next level starts.

    The history holds every level's iterations with "level", "n_layers",
    cumulative "wall_time" and "work_units" (wall time / the mean time of one
    optimizer iteration on the finest level, measured in this run).
    """
    if not isinstance(net, ODEResNet):
        raise ValueError("nested_train needs an lp.ODEResNet on layer ranks only "
                         f"(not on a grid with data groups), got {net!r}")
    # Checks that may fail on some ranks only are agreed by all (none is left waiting).
    with collective.checks(net.comm if net.distributed else None,
                           "checking the arguments of lp.nested_train"):
        optimizer = create_optimizer(optimizer)
        levels = check.positive_int(levels, "levels")
        schedule = [check.positive_int(m, "schedule") for m in schedule]
        if len(schedule) != levels:
            raise ValueError(f"schedule needs {levels} entries (one per level), "
                             f"got {len(schedule)}")
        check.choice(interp, "interp", INTERPOLATIONS)
        if net.n_layers % 2 ** (levels - 1):
            raise ValueError(f"n_layers={net.n_layers} is not divisible by 2^(levels-1)="
                             f"{2 ** (levels - 1)}")
        if one_shot is not None and solver is None:
            raise ValueError("one_shot needs a solver (an lp.MGRIT)")
        if carry_optimizer and net.distributed:
            raise ValueError("carry_optimizer works on one rank only")
        if solver is not None and not isinstance(solver, MGRIT):
            raise ValueError(f"solver must be an lp.MGRIT or None, got {solver!r}")
        refine_cycles = check.positive_int(refine_cycles, "refine_cycles")
        refine_steps = check.positive_int(refine_steps, "refine_steps")

    cur = _with_layers(net, net.n_layers // 2 ** (levels - 1))
    theta = cur.init(init, seed=seed, magnitude=magnitude, outer=outer)
    records, level_times = [], []
    elapsed = 0.0
    user_callback = train_kwargs.pop("callback", None)
    for level, m in enumerate(schedule):
        if level > 0:
            previous = cur
            cur, theta = refine(cur, theta, interp)
            if carry_optimizer:
                _refine_optimizer_state(optimizer, previous, cur, interp)
            else:
                optimizer.reset()
        phases = [(m, one_shot)]
        if level > 0 and one_shot is not None:
            first = min(refine_steps, m)
            phases = [(first, refine_cycles), (m - first, one_shot)]
        done = 0
        t_level = time.perf_counter()
        for count, cycles in phases:
            if count == 0:
                continue
            callback = None
            if user_callback is not None:  # iterations counted across levels
                def callback(it, rec, offset=len(records), level=level, n=cur.n_layers,
                             start=elapsed):
                    user_callback(it + offset, dict(rec, iteration=it + offset, level=level,
                                                    n_layers=n,
                                                    wall_time=rec["wall_time"] + start))
            h = train(cur, theta, X, Y, optimizer, iterations=count, solver=solver,
                      one_shot=cycles, validation=validation, validate_every=validate_every,
                      callback=callback, **train_kwargs)
            for r in h.records():
                r["iteration"] += done
                r["level"] = level
                r["n_layers"] = cur.n_layers
                r["wall_time"] += elapsed
                records.append(r)
            done += len(h["iteration"])
            elapsed = records[-1]["wall_time"]
            if h.stop_reason == "grad_tol":  # this level has converged: refine
                break
        level_times.append((time.perf_counter() - t_level) / done)
    unit = level_times[-1]  # one fine-level optimizer iteration
    history = History()
    for i, r in enumerate(records):
        r["iteration"] = i + 1
        r["work_units"] = r["wall_time"] / unit
        history.append(r)
    history.work_unit_seconds = unit
    return cur, theta, history
