"""Modelled layer-parallel speedup of the MNIST-shaped conv ODE-ResNet.

Network: 28 x 28 one-channel images, C channels (4 in the reference code's MNIST
example), 3 x 3 kernels, tanh, T = 5, N residual layers. MGRIT (FCF, V-cycles,
c = 4) is solved to rtol 1e-8 on a batch of images to measure the forward
and adjoint iteration counts; the speedup on P ranks is then modelled by
counting step applications on the busiest rank per iteration:

    level l with n_l intervals: (sweeps c + 1 + (c - 1)) * max(1, ceil(n_l / (c P)))
    coarsest level: its n_L steps in sequence

(relaxation, the residual's coarse steps, the F-relaxation after the
correction), speedup(P) = N / (iterations x that), communication ignored. At
P = N / c this is lp.mgrit.potential_speedup. One-shot training (d cycles per
solve) uses iterations = d. Rows: {"bench": "conv_speedup", "layers", "init",
"iterations_forward", "iterations_adjoint", "ranks", "speedup", "speedup_one_shot"}.

    python bench/conv_speedup.py [--layers 128,512] [--channels 4] [--batch 10]
"""

import argparse
import math
import os

import numpy as np

from _common import emit, log

import layerparallel as lp


def levels(n, c, max_levels=10, min_coarse=2):
    counts = [n]
    while len(counts) < max_levels and counts[-1] > min_coarse and counts[-1] // c >= 1:
        counts.append(counts[-1] // c)
    return counts


def steps_per_iteration(n, ranks, c=4, sweeps=2):
    counts = levels(n, c)
    cost = 0
    for n_l in counts[:-1]:
        cost += (sweeps * c + 1 + (c - 1)) * max(1, math.ceil(n_l / (c * ranks)))
    return cost + counts[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", default="128,512")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--ranks", default="16,32,64,128,256")
    ap.add_argument("--one-shot", type=int, default=2)
    args = ap.parse_args()
    lp.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, size=(args.batch, 1, 28, 28))
    Y = np.eye(10)[rng.integers(0, 10, size=args.batch)]
    log(f"load average {os.getloadavg()}")
    for N in (int(v) for v in args.layers.split(",")):
        net = lp.ConvODEResNet((1, 28, 28), args.channels, N, 10, T=5.0, activation="tanh")
        for init, magnitude in (("uniform", 0.1), ("he", 1.0)):
            theta = net.init(init, seed=0, magnitude=magnitude)
            mg = lp.MGRIT(cfactor=4, relax="FCF", cycle="V", tol=None, rtol=1e-8, max_iter=40,
                          warm_start=False)
            _, _, info = net.loss_and_grad(theta, X, Y, solver=mg)
            its = max(info["forward"]["iterations"], info["adjoint"]["iterations"])
            limit = lp.mgrit.potential_speedup(N, its, cfactor=4)
            for P in (int(v) for v in args.ranks.split(",")):
                if P > N:
                    continue
                per = steps_per_iteration(N, P)
                row = dict(bench="conv_speedup", layers=N, channels=args.channels, init=init,
                           iterations_forward=info["forward"]["iterations"],
                           iterations_adjoint=info["adjoint"]["iterations"],
                           rho_forward=info["forward"]["rho"], ranks=P,
                           speedup=N / (its * per),
                           speedup_one_shot=N / (args.one_shot * per),
                           potential_speedup_at_N_over_c=limit)
                emit(**row)


if __name__ == "__main__":
    main()
