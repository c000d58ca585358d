"""Peak memory of a converged forward + adjoint + gradient MGRIT solve, beside the model.

For each storage mode a fresh process builds an N-layer net (default N = 4096,
width 64, batch 1000), solves to rtol 1e-6 and reports the growth of its peak
RSS over the baseline taken just before the solve, beside the model:
  states  per engine (forward and adjoint): level 0 keeps N+1 states ("all")
          or its C-points (+1) ("C"); every coarser level l keeps g for its
          n_l + 1 points (its u are the finer level's C-points, shared);
  derivs  ("all") sigma'(z_n) of every layer, cached for the adjoint;
  work    per thread: 3 engine states, the forward step's z, the adjoint's d,
          and c recomputed forward states ("C") or the gradient's factor ("all");
  model   u_0, z_0, u_N, lambda, a scratch state; weights and gradient.
A state is batch x width doubles.

    python bench/mgrit_memory.py [--layers 4096] [--width 64] [--batch 1000] [--cfactor 4]
"""

import argparse
import json
import resource
import subprocess
import sys

import numpy as np


def model_bytes(N, w, batch, c, storage, threads, min_coarse=2, max_levels=10):
    S = 8 * batch * w
    counts = [N]
    while len(counts) < max_levels and counts[-1] > min_coarse and counts[-1] // c >= 1:
        counts.append(counts[-1] // c)
    level0 = (N + 1) if storage == "all" else (N // c + 2)
    coarse = sum(n + 1 for n in counts[1:])  # g; the states are level 0's C-points
    engines = 2 * (level0 + coarse) * S
    derivatives = N * S if storage == "all" else 0  # sigma'(z_n) cached for the adjoint
    work = threads * (2 * 3 + 1 + 1 + (c if storage == "C" else 1)) * S
    model = 5 * S
    params = 2 * 8 * (N * (w * w + w) + 2 * w + w + 5 * w + 5)
    return engines + derivatives + work + model + params


def child(args):
    import layerparallel as lp

    X, Y = lp.datasets.peaks(n=args.batch, seed=0)
    net = lp.ODEResNet(2, args.width, args.layers, 5, T=5.0, activation="smoothrelu")
    theta = net.init("box", seed=0)
    mg = lp.MGRIT(cfactor=args.cfactor, tol=None, rtol=1e-6, storage=args.storage,
                  warm_start=False)
    # the current RSS (not the peak so far: initialization's temporaries are gone)
    with open("/proc/self/statm") as f:
        base = int(f.read().split()[1]) * resource.getpagesize()
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(dict(growth=peak - base, iterations=info["forward"]["iterations"],
                          threads=lp.get_num_threads())))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4096)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--storage", default=None)
    args = ap.parse_args()
    if args.storage:
        return child(args)
    for storage in ("all", "C"):
        cmd = [sys.executable, __file__, "--layers", str(args.layers), "--width",
               str(args.width), "--batch", str(args.batch), "--cfactor", str(args.cfactor),
               "--storage", storage]
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True,
                                        check=True).stdout.splitlines()[-1])
        predicted = model_bytes(args.layers, args.width, args.batch, args.cfactor, storage,
                                out["threads"])
        print(json.dumps(dict(bench="mgrit_memory", storage=storage, n_layers=args.layers,
                              width=args.width, batch=args.batch, cfactor=args.cfactor,
                              threads=out["threads"], measured_gb=out["growth"] / 2**30,
                              model_gb=predicted / 2**30,
                              ratio=out["growth"] / predicted,
                              mgrit_iterations=out["iterations"])), flush=True)


if __name__ == "__main__":
    main()
