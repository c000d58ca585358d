"""Cost of the torch autograd block around the compiled core.

One forward + backward (from a given dL/du_N, with dL/dy: the block in the
middle of a model) of an ODE-ResNet, three ways, interleaved round by round:
  block  lp.torch.ODEResNetBlock: u = block(y); u.backward(G)
  core   the same two core calls without torch: forward (keeping the states)
         and backward from G into fresh gradient arrays
  torch  the same network in plain torch (lp.torch.to_module), eager autograd
Rows: {"bench":"torch_overhead", "impl", "width", "n_layers", "batch",
"threads", "solver", "min_s", "median_s", "cpu_min_s", "cpu_median_s", "reps"}
and a summary row with block/core - 1 (the overhead; target < 5 % at width 64,
batch 1000) and torch/block, by wall time and by process CPU time (on a
crowded machine the CPU time is the steadier measure of work: it does not
count the time the process waits for a core), plus the load average and the
processor.
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
    ap.add_argument("--mgrit", action="store_true", help="MGRIT (c = 4, tol 1e-9, warm starts) for block "
                                                          "and core (torch stays serial)")
    args = ap.parse_args()

    import torch

    lp.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    net = lp.ODEResNet(2, args.width, args.layers, 5, T=5.0, activation="smoothrelu")
    solver = lp.MGRIT(cfactor=4, tol=1e-9, max_iter=30) if args.mgrit else None
    runs = variants(net, solver, args.batch, seed=0)
    for fn in runs.values():  # warm-up: first calls allocate and fault in the workspaces
        fn()
        fn()
    times = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    load0 = os.getloadavg()
    for _ in range(args.reps):  # interleaved: block, core, torch, block, core, torch, ...
        for name, fn in runs.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    load1 = os.getloadavg()
    common = dict(bench="torch_overhead", width=args.width, n_layers=args.layers,
                  batch=args.batch, threads=args.threads,
                  solver="mgrit" if args.mgrit else "serial")
    stats = {k: (float(np.min(v)), float(np.median(v))) for k, v in times.items()}
    cstats = {k: (float(np.min(v)), float(np.median(v))) for k, v in cpu.items()}
    for name, (mn, med) in stats.items():
        cmn, cmed = cstats[name]
        emit(**common, impl=name, min_s=mn, median_s=med, cpu_min_s=cmn, cpu_median_s=cmed,
             reps=args.reps)
        log(f"{name:6s} wall min {mn * 1e3:8.2f} ms  median {med * 1e3:8.2f} ms   "
            f"cpu min {cmn * 1e3:8.2f} ms  median {cmed * 1e3:8.2f} ms")
    summary = dict(**common, impl="summary")
    for label, st in (("", stats), ("cpu_", cstats)):
        for i, which in enumerate(("min", "median")):
            summary[f"{label}overhead_{which}"] = st["block"][i] / st["core"][i] - 1
            summary[f"{label}torch_over_block_{which}"] = st["torch"][i] / st["block"][i]
    summary.update(loadavg_before=load0[0], loadavg_after=load1[0], processor=processor())
    emit(**summary)
    for label, name in (("", "wall"), ("cpu_", "cpu")):
        log(f"{name}: block/core - 1: min {summary[label + 'overhead_min']:+.1%}, median "
            f"{summary[label + 'overhead_median']:+.1%}; torch/block: min "
            f"{summary[label + 'torch_over_block_min']:.2f}, median "
            f"{summary[label + 'torch_over_block_median']:.2f}")
    log(f"load average {load0[0]:.1f} -> {load1[0]:.1f}, {processor()}")


if __name__ == "__main__":
    main()
