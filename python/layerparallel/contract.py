"""The App contract checker (the C++ ``check_app``) on a net's propagators.

The MGRIT engine trusts every propagator ("app") to be deterministic, to
leave its input untouched, and to give the same bits when steps run
concurrently or as one batch (``App::step_batch``). :func:`check_apps` runs
that checker on the forward and the adjoint app of an ``lp.ODEResNet`` on
its device, from Python: a quick test after changing kernels or backends.
"""

import numpy as np

from . import _core


def check_apps(net, theta, batch=16, seed=0, spacing=1, calls=None):
    """Problems the contract checker finds in ``net``'s forward and adjoint
    apps: ``{"forward": [...], "adjoint": [...]}`` (empty lists: none).

    theta : the net's parameters (lp.Params or a flat array, one rank).
    batch : rows of the random states stepped.
    spacing : forward states stored every ``spacing`` layers (1: all; more
        makes the adjoint recompute the others, as storage "C" does).
    calls : (level, from, to) steps to check, the same for both apps (engine
        time); default a few level-0 steps and one coarse step of stride 2.
    """
    if getattr(net, "distributed", False):
        raise ValueError("check_apps runs on one rank (the apps never communicate)")
    N = net.n_layers
    if calls is None:
        calls = [(0, 0, 1), (0, N // 2, N // 2 + 1), (0, N - 1, N)]
        if N >= 4:
            calls += [(1, 0, 2), (1, 2, 4)]
    calls = [(int(l), int(a), int(b)) for l, a, b in calls]
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    theta = np.ascontiguousarray(net._theta(theta), dtype=np.float64)
    rng = np.random.default_rng(seed)
    u0 = rng.standard_normal(batch * net.width)
    lam = rng.standard_normal(batch * net.width)
    return _core._check_resnet_apps(net._net_config, net._device, theta, u0, lam, calls, calls,
                                    int(spacing))
