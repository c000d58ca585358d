"""Register-blocked kernels against the BLAS path and numpy's GEMM rate (widths 32, 64).

Serial forward + backward (loss and full gradient) of a 64-layer ReLU net on a
batch of 1000 with the blocked kernels forced on, forced off (the BLAS path),
and numpy's 3N GEMMs of the same shapes (serial_vs.py's reference), all
interleaved in one process by bench/harness.py. Also reports which path the
per-process timing ("auto") picks.
Rows: {"bench":"blocked_vs", "impl", "width", "threads", "median_s", "min_s",
"gemm_rate_ratio" (numpy's time / this one's), "auto_picks_blocked", "processor",
"load_avg_before", "load_avg_after"}.
Run: python bench/blocked_vs.py [--widths 32 64] [--threads 1]
"""

import argparse

import numpy as np

from _common import emit, log, use_threads
from harness import Variant, compare
from serial_vs import numpy_gemms

import layerparallel as lp


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--layers", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads (default: the package's default)")
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    args.threads = use_threads(args.threads)
    mode = lp.narrow_kernels()
    X, Y = lp.datasets.peaks(n=args.batch, seed=0)
    rng = np.random.default_rng(0)
    try:
        for w in args.widths:
            lp.set_narrow_kernels("auto")
            auto = lp.narrow_kernels(w)
            net = lp.ODEResNet(2, w, args.layers, 5, T=5.0, activation="relu")
            theta = net.init("he", seed=0)
            theta.data[...] *= 0.5

            def ours():
                net.loss_and_grad(theta, X, Y)
            variants = [Variant("blocked", ours, setup=lambda: lp.set_narrow_kernels("on")),
                        Variant("blas", ours, setup=lambda: lp.set_narrow_kernels("off")),
                        Variant("numpy_3N_gemm", numpy_gemms(args.batch, w, args.layers, rng))]
            rows = {r["name"]: r for r in compare(variants, rounds=args.rounds,
                                                    min_seconds=args.min_seconds * len(variants))}
            ref = rows["numpy_3N_gemm"]["median_s"]
            for name, r in rows.items():
                emit(bench="blocked_vs", impl=name, width=w, threads=args.threads,
                     median_s=r["median_s"], min_s=r["min_s"],
                     gemm_rate_ratio=ref / r["median_s"], auto_picks_blocked=auto,
                     processor=r["processor"], load_avg_before=r["load_avg_before"],
                     load_avg_after=r["load_avg_after"])
    finally:
        lp.set_narrow_kernels(mode)


if __name__ == "__main__":
    main()
