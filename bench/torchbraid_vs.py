"""torchbraid's own LayerParallel against lp.MGRIT on torchbraid's configuration.

The configuration: an ODE-ResNet of 32 dense residual layers of width 8
(u_{n+1} = u_n + h relu(W_n u_n + b_n), h = T/N, T = 5), an opening layer
relu(W_in x + b_in) from 2 features, a softmax cross-entropy head to 5
classes, batch 5000 (the peaks problem); MGRIT with 3 levels, c = 4, FCF
relaxation on every level, exactly 2 iterations for the forward and for the
adjoint solve, then the gradient: one forward plus ``loss.backward()`` for
torchbraid, one ``loss_and_grad`` for us.

torchbraid is set up the way its tests and drivers do it
(``torchbraid.LayerParallel(comm, block, N, T, max_fwd_levels,
max_bwd_levels, max_iters)`` with ``setCFactor``, ``setNumRelax``,
``setSkipDowncycle``), with the opening layer and the head as ordinary
PyTorch modules around it; ours is lp.MGRIT with conventions="xbraid" and
no skip of the first down-cycle (torchbraid's LayerParallel default, unlike
XBraid's own). Both networks get the same weights. Before timing, the script
counts the layer steps each side applies (torchbraid's step callbacks, our
engine's ``info["steps"]``) and compares loss and gradient with each other
and with serial propagation, after 2 iterations and after
``--converged-iters`` (where both must equal serial up to rounding). After 2
iterations they differ slightly: XBraid ends with an F+C sweep on level 0
(torchbraid records its backward there), our engine with the last cycle's
F-relaxation; the cycles themselves apply the same steps.

Ours runs twice: with the solver's default (blocks of rows sized from the
cache: lp.MGRIT's batch_block) and on the whole batch at once (batch_block=0).

The timing interleaves the variants (bench/harness.py: A, B, A, B, ...) in one
process on one rank and reports min and median, the processor and the load
average, for float64 and float32.

    python bench/torchbraid_vs.py [--dtypes float64 float32] [--rounds 5] [--min-seconds 4]

``--ours-only`` times only our side (MGRIT fwd + adj + grad, and serial),
without torchbraid, with the loss in every row: the form for comparing two
builds of this package with bench/harness.py --variant.

torchbraid is not a dependency of this package: without it installed (it
needs XBraid and Cython to build) the script says so and exits with status 0.
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import Variant, compare, machine  # noqa: E402

WIDTH, LAYERS, BATCH, N_IN, N_OUT, T = 8, 32, 5000, 2, 5, 5.0
LEVELS, CFACTOR, ITERS = 3, 4, 2


def import_torchbraid():
    try:
        import torch  # noqa: F401
        import torchbraid
        from mpi4py import MPI  # noqa: F401
    except ImportError as e:
        return None, f"torchbraid is not importable ({e}); nothing to compare against"
    return torchbraid, None


def build_torchbraid(torchbraid, theta, dtype, skip, counts, iters=ITERS):
    """torchbraid's network with our weights: opening, LayerParallel, head."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from mpi4py import MPI

    class ReLUBlock(nn.Module):
        # torchbraid's ODE wrapper makes the step x + dt * block(x).
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(WIDTH, WIDTH, bias=True)

        def forward(self, x):
            return F.relu(self.lin(x))

    tdt = torch.float64 if dtype == "float64" else torch.float32
    torch.set_default_dtype(tdt)  # torchbraid builds its layers (and buffers) in it
    lp_nn = torchbraid.LayerParallel(MPI.COMM_WORLD, ReLUBlock, LAYERS, T,
                                     max_fwd_levels=LEVELS, max_bwd_levels=LEVELS,
                                     max_iters=iters)
    lp_nn.setPrintLevel(0)
    lp_nn.setCFactor(CFACTOR)
    lp_nn.setNumRelax(1)           # FCF on the coarse levels ...
    lp_nn.setNumRelax(1, level=0)  # ... and on level 0 (torchbraid's default there is F)
    lp_nn.setSkipDowncycle(skip)
    opening = nn.Linear(N_IN, WIDTH)
    head = nn.Linear(WIDTH, N_OUT)
    with torch.no_grad():
        for n, layer in enumerate(lp_nn.layer_models):
            layer.layer.lin.weight.copy_(torch.from_numpy(theta.W[n].astype(np.float64)))
            layer.layer.lin.bias.copy_(torch.from_numpy(theta.b[n].astype(np.float64)))
        opening.weight.copy_(torch.from_numpy(theta.W_in.astype(np.float64)))
        opening.bias.copy_(torch.from_numpy(theta.b_in.astype(np.float64)))
        head.weight.copy_(torch.from_numpy(theta.W_out.astype(np.float64)))
        head.bias.copy_(torch.from_numpy(theta.b_out.astype(np.float64)))
    lp_nn.train()

    # Count the steps braid asks for (forward app and adjoint app).
    for app, key in ((lp_nn.fwd_app, "forward"), (lp_nn.bwd_app, "adjoint")):
        inner = app.eval

        def counted(*a, _inner=inner, _key=key):
            counts[_key] += 1
            return _inner(*a)

        app.eval = counted

    modules = nn.ModuleList([opening, lp_nn, head])

    def loss_backward(x, labels):
        modules.zero_grad(set_to_none=False)
        y = head(lp_nn(F.relu(opening(x))))
        loss = F.cross_entropy(y, labels)
        loss.backward()
        return loss

    def gradient():
        W = np.stack([l.layer.lin.weight.grad.double().numpy() for l in lp_nn.layer_models])
        b = np.stack([l.layer.lin.bias.grad.double().numpy() for l in lp_nn.layer_models])
        return {"W": W, "b": b, "W_in": opening.weight.grad.double().numpy(),
                "b_in": opening.bias.grad.double().numpy(),
                "W_out": head.weight.grad.double().numpy(),
                "b_out": head.bias.grad.double().numpy()}

    return loss_backward, gradient, tdt


def rel_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def our_side(dtype, skip, iters):
    """Our network, weights, data and solver: (theta, X, Y, ours), with ours the
    callables timed (MGRIT and serial loss_and_grad)."""
    import layerparallel as lp

    X, Y = lp.datasets.peaks(n=BATCH, seed=0)
    net = lp.ODEResNet(N_IN, WIDTH, LAYERS, N_OUT, T=T, activation="relu", dtype=dtype)
    theta = net.init("he", seed=0)
    theta.data[...] *= 0.5
    mg = lp.MGRIT(cfactor=CFACTOR, max_levels=LEVELS, relax="FCF", tol=None, rtol=None,
                  max_iter=iters, warm_start=False, conventions="xbraid",
                  skip_first_down=skip)
    whole = mg.replace(batch_block=0)  # the whole batch at once, not blocks of rows
    Xd, Yd = X.astype(dtype), Y.astype(dtype)
    ours = dict(call=lambda: net.loss_and_grad(theta, Xd, Yd, solver=mg),
                whole=lambda: net.loss_and_grad(theta, Xd, Yd, solver=whole),
                serial=lambda: net.loss_and_grad(theta, Xd, Yd))
    return theta, X, Y, ours


def setup(dtype, skip, iters):
    """Both sides with the same weights and data: (theirs, ours) dicts."""
    import torch

    torchbraid, _ = import_torchbraid()
    theta, X, Y, ours = our_side(dtype, skip, iters)
    counts = {"forward": 0, "adjoint": 0}
    loss_backward, gradient, tdt = build_torchbraid(torchbraid, theta, dtype, skip, counts, iters)
    xt = torch.from_numpy(np.ascontiguousarray(X)).to(tdt)
    labels = torch.from_numpy(np.argmax(Y, axis=1))
    theirs = dict(call=lambda: float(loss_backward(xt, labels).detach()), gradient=gradient,
                  counts=counts)
    return theirs, ours


def agreement(dtype, skip, iters):
    """One cold call each (then a second one for the step counts): losses,
    gradients against each other and against serial propagation, steps."""
    theirs, ours = setup(dtype, skip, iters)
    loss_tb = theirs["call"]()
    steps_tb = dict(theirs["counts"])
    g_tb = theirs["gradient"]()
    J, grad, info = ours["call"]()
    J_serial, grad_serial = ours["serial"]()
    theirs["call"]()  # torchbraid's second solve starts from the first's states
    steps_tb2 = {k: theirs["counts"][k] - steps_tb[k] for k in steps_tb}
    g_serial = {k: getattr(grad_serial, k) for k in g_tb}
    return {
        "iterations": iters,
        "loss_torchbraid": loss_tb, "loss_ours": float(J), "loss_serial": float(J_serial),
        "grad_rel_diff_theirs_ours": max(rel_diff(getattr(grad, k), g_tb[k]) for k in g_tb),
        "grad_rel_diff_theirs_serial": max(rel_diff(g_tb[k], g_serial[k]) for k in g_tb),
        "grad_rel_diff_ours_serial": max(rel_diff(getattr(grad, k), g_serial[k]) for k in g_tb),
        "steps_torchbraid": steps_tb, "steps_torchbraid_second_call": steps_tb2,
        "steps_ours": {"forward": info["forward"]["steps"], "adjoint": info["adjoint"]["steps"]},
        "iterations_ours": {"forward": info["forward"]["iterations"],
                            "adjoint": info["adjoint"]["iterations"]},
    }


def run(dtype, skip, rounds, min_seconds, converged_iters):
    import torch
    import layerparallel as lp

    torch.set_num_threads(lp.get_num_threads())
    checks = [agreement(dtype, skip, ITERS)]
    if converged_iters:
        checks.append(agreement(dtype, skip, converged_iters))
    for c in checks:
        print(json.dumps(dict(bench="torchbraid_vs", kind="check", dtype=dtype,
                              skip_first_down=skip, **c)), flush=True)
    theirs_, ours_ = setup(dtype, skip, ITERS)

    def ours():
        ours_["call"]()

    def theirs():
        theirs_["call"]()

    def whole():
        ours_["whole"]()

    rows = compare([Variant("torchbraid", theirs), Variant("layerparallel", ours),
                    Variant("layerparallel_whole_batch", whole)],
                   rounds=rounds, min_seconds=min_seconds)
    by = {r["name"]: r for r in rows}
    for r in rows:
        r.update(threads_ours=lp.get_num_threads(), threads_torch=torch.get_num_threads())
        out = dict(bench="torchbraid_vs", kind="timing", dtype=dtype, skip_first_down=skip,
                   impl=r["name"], min_s=r["min_s"], median_s=r["median_s"], calls=r["calls"],
                   threads_ours=lp.get_num_threads(), threads_torch=torch.get_num_threads(),
                   processor=r["processor"], load_avg_before=r["load_avg_before"],
                   load_avg_after=r["load_avg_after"])
        if r["name"].startswith("layerparallel"):
            out["torchbraid_over_ours_min"] = by["torchbraid"]["min_s"] / r["min_s"]
            out["torchbraid_over_ours_median"] = by["torchbraid"]["median_s"] / r["median_s"]
        print(json.dumps(out), flush=True)
    return checks, rows


def ours_only(dtypes, rounds, min_seconds):
    import layerparallel as lp

    for dtype in dtypes:
        ours = our_side(dtype, False, ITERS)[3]
        J = float(ours["call"]()[0])
        J_serial = float(ours["serial"]()[0])
        rows = compare([Variant("mgrit", ours["call"]), Variant("mgrit_whole_batch", ours["whole"]),
                        Variant("serial", ours["serial"])],
                       rounds=rounds, min_seconds=min_seconds)
        for r in rows:
            print(json.dumps(dict(bench="torchbraid_vs", kind="ours", dtype=dtype,
                                  impl=r["name"], threads=lp.get_num_threads(),
                                  loss=repr(J if r["name"] == "mgrit" else J_serial),
                                  min_s=r["min_s"], median_s=r["median_s"], calls=r["calls"],
                                  processor=r["processor"],
                                  load_avg_before=r["load_avg_before"])), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                   choices=["float64", "float32"])
    p.add_argument("--skip-first-down", action="store_true",
                   help="both sides skip the first down-cycle (XBraid's own default; "
                        "torchbraid's LayerParallel turns it off unless asked)")
    p.add_argument("--converged-iters", type=int, default=12,
                   help="also compare both sides after this many iterations, where both "
                        "must agree with serial propagation (0: skip)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=4.0,
                   help="timed seconds per variant in all (split over the rounds)")
    p.add_argument("--ours-only", action="store_true",
                   help="time only lp.MGRIT and serial (no torchbraid needed)")
    args = p.parse_args()
    if args.ours_only:
        ours_only(args.dtypes, args.rounds, args.min_seconds)
        return 0

    torchbraid, why = import_torchbraid()
    if torchbraid is None:
        print(f"torchbraid_vs: skipped: {why}. Build it separately to compare "
              "(it is not a dependency of layerparallel).")
        return 0
    print(f"# {json.dumps(machine())}", flush=True)
    table = []
    for dtype in args.dtypes:
        checks, rows = run(dtype, args.skip_first_down, args.rounds, args.min_seconds,
                          args.converged_iters)
        by = {r["name"]: r for r in rows}
        table.append((dtype, checks, by))
    print("\n| dtype | torchbraid ms (min / median) | ours ms (min / median) | "
          "torchbraid / ours (min / median) | ours, whole batch ms (min / median) | "
          "steps fwd / adj (theirs, ours) | loss theirs - ours |")
    print("|---|---|---|---|---|---|---|")
    for dtype, checks, by in table:
        check = checks[0]
        tb, us, wh = by["torchbraid"], by["layerparallel"], by["layerparallel_whole_batch"]
        st, so = check["steps_torchbraid"], check["steps_ours"]
        print(f"| {dtype} | {tb['min_s'] * 1e3:.1f} / {tb['median_s'] * 1e3:.1f} | "
              f"{us['min_s'] * 1e3:.1f} / {us['median_s'] * 1e3:.1f} | "
              f"{tb['min_s'] / us['min_s']:.1f}x / {tb['median_s'] / us['median_s']:.1f}x | "
              f"{wh['min_s'] * 1e3:.1f} / {wh['median_s'] * 1e3:.1f} | "
              f"{st['forward']} / {st['adjoint']}, {so['forward']} / {so['adjoint']} | "
              f"{check['loss_torchbraid'] - check['loss_ours']:.2e} |")
    print(f"\nThreads: {by['layerparallel']['threads_ours']} (ours), "
          f"{by['layerparallel']['threads_torch']} (PyTorch); load average before / after: "
          f"{by['layerparallel']['load_avg_before']} / {by['layerparallel']['load_avg_after']}")
    for dtype, checks, _ in table:
        for c in checks:
            print(f"{dtype}, {c['iterations']} iterations: loss torchbraid {c['loss_torchbraid']:.12f}, "
                  f"ours {c['loss_ours']:.12f}, serial {c['loss_serial']:.12f}; gradient relative "
                  f"difference theirs-ours {c['grad_rel_diff_theirs_ours']:.1e}, theirs-serial "
                  f"{c['grad_rel_diff_theirs_serial']:.1e}, ours-serial "
                  f"{c['grad_rel_diff_ours_serial']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
