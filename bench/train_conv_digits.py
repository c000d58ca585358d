"""Train a conv ODE-ResNet on scikit-learn's 8 x 8 digit images, serially and
with one-shot MGRIT across the layers (same data, seed, optimizer and steps).

Network: conv opening 1 -> C channels, N conv residual layers (3 x 3, relu),
flattened head; Adam on mini-batches. Rows: {"bench": "train_conv_digits",
"mode", "channels", "layers", "iterations", "val_accuracy" (final),
"best_val_accuracy", "first_iteration_95", "wall_s", "load"}.

    python bench/train_conv_digits.py [--channels 8] [--layers 32] [--iterations 150]
                                      [--one-shot 2] [--cfactor 4] [--modes serial,one-shot]
"""

import argparse
import os
import time

from _common import emit, log

import layerparallel as lp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--one-shot", type=int, default=2)
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--modes", default="serial,one-shot")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    lp.set_num_threads(1)
    p = lp.datasets.problem("digits-images", samples=1797, seed=args.seed)
    log(f"{p.description}; load average {os.getloadavg()}")
    for mode in args.modes.split(","):
        net = lp.ConvODEResNet((1, 8, 8), args.channels, args.layers, 10, T=1.0,
                               activation="relu", pooling="flatten", gamma_tik=1e-4)
        theta = net.init("he", seed=args.seed)
        solver = lp.MGRIT(cfactor=args.cfactor) if mode == "one-shot" else None
        t0 = time.perf_counter()
        h = lp.train(net, theta, p.X, p.Y, lp.optim.create("adam", lr=args.lr),
                     iterations=args.iterations, batch_size=args.batch_size, solver=solver,
                     one_shot=args.one_shot if solver else None, validation=(p.X_val, p.Y_val),
                     validate_every=10, seed=args.seed)
        wall = time.perf_counter() - t0
        acc = [(i, a) for i, a in zip(h["iteration"], h["val_accuracy"]) if a is not None]
        log(mode, [f"{i}:{a:.3f}" for i, a in acc])
        first = next((i for i, a in acc if a >= 0.95), None)
        emit(bench="train_conv_digits", mode=mode, channels=args.channels, layers=args.layers,
             iterations=args.iterations, one_shot=args.one_shot if solver else None,
             cfactor=args.cfactor if solver else None, val_accuracy=acc[-1][1],
             best_val_accuracy=max(a for _, a in acc), first_iteration_95=first,
             n_val=p.X_val.shape[0], wall_s=wall, load=os.getloadavg()[0])


if __name__ == "__main__":
    main()
