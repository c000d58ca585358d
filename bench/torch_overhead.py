"""Cost of the torch autograd block around the compiled core.

One forward + backward (from a given dL/du_N, with dL/dy: the block in the
middle of a model) of an ODE-ResNet, three ways, interleaved round by round:
  block  lp.torch.ODEResNetBlock: u = block(y); u.backward(G)
  core   the same two core calls without torch: forward (keeping the states)
         and backward from G into fresh gradient arrays
  torch  the same network in plain torch (lp.torch.to_module), eager autograd
Rows: {"bench":"torch_overhead", "impl", "width", "n_layers", "batch",
"threads", "solver", "min_s", "median_s", "reps"} and a summary row with
block/core - 1 (the overhead; target < 5 % at width 64, batch 1000) and
torch/block, plus the load average and the processor.
Run: python bench/torch_overhead.py [--width 64 --layers 64 --batch 1000 --reps 15]
"""

import argparse
import os
import platform
import time

import numpy as np

from _common import emit, log

import layerparallel as lp


def processor():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def variants(net, solver, batch, seed):
    import torch

    rng = np.random.default_rng(seed)
    theta = net.init("box", seed=seed)
    X = rng.uniform(-3, 3, (batch, net.n_in))
    G = rng.standard_normal((batch, net.width)) / batch
    block = lp.torch.ODEResNetBlock(net, solver=solver, theta=theta)
    module = lp.torch.to_module(net, theta)
    Gt = torch.from_numpy(G)
    model = net._model if solver is None else net._parallel_model(solver)
    warm = net._warm(solver)

    def run_block():
        y = torch.from_numpy(X).requires_grad_(True)
        block.zero_grad(set_to_none=True)
        block(y).backward(Gt)

    def run_core():
        if solver is None:
            uN, tape = model.forward_tape(theta.data, X)
        else:
            uN, _, tape = model.forward_tape(theta.data, X, warm)
        grad, dX = net.new_params(), np.zeros(X.shape)
        if solver is None:
            model.backward(theta.data, X, G, tape, grad.data, dX.reshape(-1))
        else:
            model.backward(theta.data, X, G, tape, grad.data, dX.reshape(-1), warm)

    def run_torch():
        y = torch.from_numpy(X).requires_grad_(True)
        module.zero_grad(set_to_none=True)
        module.states(y).backward(Gt)

    return {"block": run_block, "core": run_core, "torch": run_torch}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--mgrit", action="store_true", help="MGRIT (c = 4, rtol 1e-8) for block "
                                                          "and core (torch stays serial)")
    args = ap.parse_args()

    import torch

    lp.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    net = lp.ODEResNet(2, args.width, args.layers, 5, T=5.0, activation="smoothrelu")
    solver = lp.MGRIT(cfactor=4, rtol=1e-8, tol=None, max_iter=30) if args.mgrit else None
    runs = variants(net, solver, args.batch, seed=0)
    for fn in runs.values():  # warm-up: first calls allocate and fault in the workspaces
        fn()
        fn()
    times = {k: [] for k in runs}
    load0 = os.getloadavg()
    for _ in range(args.reps):  # interleaved: block, core, torch, block, core, torch, ...
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    load1 = os.getloadavg()
    common = dict(bench="torch_overhead", width=args.width, n_layers=args.layers,
                  batch=args.batch, threads=args.threads,
                  solver="mgrit" if args.mgrit else "serial")
    stats = {k: (float(np.min(v)), float(np.median(v))) for k, v in times.items()}
    for name, (mn, med) in stats.items():
        emit(**common, impl=name, min_s=mn, median_s=med, reps=args.reps)
        log(f"{name:6s} min {mn * 1e3:8.2f} ms  median {med * 1e3:8.2f} ms")
    summary = dict(
        **common, impl="summary",
        overhead_min=stats["block"][0] / stats["core"][0] - 1,
        overhead_median=stats["block"][1] / stats["core"][1] - 1,
        torch_over_block_min=stats["torch"][0] / stats["block"][0],
        torch_over_block_median=stats["torch"][1] / stats["block"][1],
        loadavg_before=load0[0], loadavg_after=load1[0], processor=processor())
    emit(**summary)
    log(f"block/core - 1: min {summary['overhead_min']:+.1%}, median "
        f"{summary['overhead_median']:+.1%}; torch/block: min {summary['torch_over_block_min']:.2f}"
        f", median {summary['torch_over_block_median']:.2f}; load {load0[0]:.1f} -> {load1[0]:.1f}")


if __name__ == "__main__":
    main()
