"""The default thread count against one thread, on a quiet machine and beside busy processes.

For each case (serial forward+backward of a 64-layer net at widths 8, 64, 256,
batch 1000; an MGRIT forward+adjoint+gradient of the torchbraid configuration:
width 8, 32 layers, batch 5000, 3 levels, 2 cycles) the variants "1 thread"
and "default" (``lp.default_num_threads()``) are timed interleaved by
bench/harness.py, first on the machine as it is ("quiet"), then with
``--busy`` competing processes spinning on the CPU ("loaded"). The target:
default / 1 thread <= 1.10 in every row.

    python bench/threads_loaded.py [--busy 1] [--min-seconds 2] [--modes quiet loaded]

Run it without OMP_NUM_THREADS / OMP_WAIT_POLICY in the environment (the
package's defaults are what it measures). Rows: JSON on stdout.
"""

import argparse
import multiprocessing as mp
import os

from _common import emit, log
from harness import Variant, compare

import layerparallel as lp


def _spin():
    while True:
        pass


def cases(widths):
    X, Y = lp.datasets.peaks(n=1000, seed=0)
    for w in widths:
        net = lp.ODEResNet(2, w, 64, 5, T=5.0, activation="relu")
        theta = net.init("he", seed=0)
        theta.data[...] *= 0.5
        yield f"serial fwd+bwd w={w} N=64 B=1000", (lambda n=net, t=theta: n.loss_and_grad(t, X, Y))
    Xb, Yb = lp.datasets.peaks(n=5000, seed=0)
    net = lp.ODEResNet(2, 8, 32, 5, T=5.0)
    theta = net.init("box", seed=0)
    mg = lp.MGRIT(cfactor=4, max_levels=3, relax="FCF", tol=None, rtol=None, max_iter=2,
                  warm_start=False)
    yield "MGRIT fwd+adj+grad w=8 N=32 B=5000 (torchbraid)", (
        lambda: net.loss_and_grad(theta, Xb, Yb, solver=mg))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 64, 256])
    ap.add_argument("--busy", type=int, default=1, help="competing busy processes when loaded")
    ap.add_argument("--modes", nargs="+", default=["quiet", "loaded"],
                    choices=["quiet", "loaded"])
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        if k in os.environ:
            log(f"warning: {k}={os.environ[k]} is set; the package's defaults are not measured")
    default = lp.get_num_threads()  # what the package chose (also in builds without
    log(f"default threads: {default}")  # lp.default_num_threads)
    for mode in args.modes:
        busy = []
        if mode == "loaded":
            busy = [mp.Process(target=_spin, daemon=True) for _ in range(args.busy)]
            for p in busy:
                p.start()
        try:
            for name, fn in cases(args.widths):
                rows = compare([Variant("1 thread", fn, setup=lambda: lp.set_num_threads(1)),
                                Variant("default", fn,
                                        setup=lambda: lp.set_num_threads(default))],
                               rounds=args.rounds, min_seconds=args.min_seconds)
                one, dflt = rows
                emit(bench="threads_loaded", mode=mode, busy=len(busy), case=name,
                     default_threads=default, one_thread_min_s=one["min_s"],
                     one_thread_median_s=one["median_s"], default_min_s=dflt["min_s"],
                     default_median_s=dflt["median_s"],
                     ratio_median=dflt["median_s"] / one["median_s"],
                     ratio_min=dflt["min_s"] / one["min_s"], processor=one["processor"],
                     load_avg_before=one["load_avg_before"], load_avg_after=one["load_avg_after"])
        finally:
            for p in busy:
                p.terminate()
                p.join()
    lp.set_num_threads(default)


if __name__ == "__main__":
    main()
