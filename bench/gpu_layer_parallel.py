"""Layer-parallel inside one GPU: the serial graph vs interval-batched MGRIT.

For each width, batch and depth N: one loss and full gradient (forward and
backward, float64) on the device, timed interleaved (harness.compare) as
  (a) serial: the serial sweeps, recorded once as CUDA graphs and replayed,
  (b) mgrit: interval-batched MGRIT forward and adjoint to tol 1e-9 (c = 4, FCF, V),
  (c) one-shot: interval-batched MGRIT with exactly 2 cycles (one-shot d = 2),
and beside them the crossover model's prediction (lp.mgrit.gpu_time) from
this device's measured launch latency, batched step times (t0 + t1 k, fitted
to a forward batched step over k = 1, 16, 256 intervals) and host costs of a
batched step and a batched vector update, with the
cycles the MGRIT runs took. The measured crossover is the smallest N of the
sweep where (b) beats (a); the predicted one is gpu_crossover's over the same N.
Without a CUDA build or device it says why and exits 0.
Rows: {"bench":"gpu_layer_parallel", "width", "batch", "n_layers", "impl", "min_s",
"median_s", ...} and one {"kind":"crossover", ...} row per width and batch.
Run: python bench/gpu_layer_parallel.py [--quick]
"""

import argparse
import sys

import numpy as np

from _common import emit, log
from harness import Variant, compare

import layerparallel as lp


def model_inputs(net, batch, reps=30):
    """Measured on the device: the launch latency, (t0, t1) of a batched
    forward step, and the host costs and per-interval device time of batched
    steps and vector updates (lp.mgrit.gpu_time's options)."""
    ks = [1, 16, 256]
    rows = [lp._core._time_batched_step(net._net_config, net._device, batch, k, reps=reps)
            for k in ks]
    dev = [t["batched_device"] for t in rows]
    t1, t0 = np.polyfit(ks, dev, 1)
    u1, _ = np.polyfit(ks, [t["update_device"] for t in rows], 1)
    options = dict(step_host=float(np.median([t["batched_host"] for t in rows])),
                   update_host=float(np.median([t["update_host"] for t in rows])),
                   update_time=max(float(u1), 0.0))
    launch = float(np.median([t["launch"] for t in rows]))
    return launch, (max(float(t0), 0.0), max(float(t1), 0.0)), dict(zip(ks, dev)), options


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="widths 8, 32, 64; N 256, 1024, 4096; batch 100, 1000 (a few minutes)")
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 32, 64])
    ap.add_argument("--layers", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192])
    ap.add_argument("--batches", type=int, nargs="+", default=[100, 1000, 5000])
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-seconds", type=float, default=0.6)
    args = ap.parse_args()
    if args.quick:
        args.layers, args.batches, args.min_seconds = [256, 1024, 4096], [100, 1000], 0.3
    if not lp.cuda_available():
        why = ("this build has no CUDA backend (pip install . -Ccmake.define.LP_CUDA=ON)"
               if not lp._core.cuda_built else "no CUDA device is visible")
        log(f"bench/gpu_layer_parallel.py: nothing to measure: {why}")
        return 0
    device = lp._core.device_name(0)
    log("device:", device)
    for w in args.widths:
        for batch in args.batches:
            X, Y = lp.datasets.peaks(n=batch, seed=0)
            probe = lp.ODEResNet(2, w, 64, 5, T=5.0, activation="relu", device="cuda")
            launch, step_time, measured_steps, options = model_inputs(probe, batch)
            common = dict(bench="gpu_layer_parallel", width=w, batch=batch, device=device)
            emit(kind="model_inputs", launch_s=launch, t0_s=step_time[0], t1_s=step_time[1],
                 batched_step_device_s=measured_steps, **options, **common)
            measured_cross, iterations, serial_steps = None, {}, {}
            for N in args.layers:
                net = lp.ODEResNet(2, w, N, 5, T=5.0, activation="relu", device="cuda")
                theta = net.init("he", seed=0)
                theta.data[...] *= 0.5
                mg = lp.MGRIT(cfactor=args.cfactor, tol=1e-9, max_iter=50, warm_start=False,
                              batch_intervals=True)
                one = lp.MGRIT(cfactor=args.cfactor, tol=None, rtol=None, max_iter=2,
                               warm_start=False, batch_intervals=True)
                _, _, info = net.loss_and_grad(theta, X, Y, solver=mg)
                iterations[N] = max(info["forward"]["iterations"], info["adjoint"]["iterations"], 1)
                res = compare([Variant("serial", lambda: net.loss_and_grad(theta, X, Y)),
                               Variant("mgrit", lambda: net.loss_and_grad(theta, X, Y, solver=mg)),
                               Variant("one_shot_d2",
                                       lambda: net.loss_and_grad(theta, X, Y, solver=one))],
                              rounds=args.rounds, min_seconds=args.min_seconds)
                by = {r["name"]: r for r in res}
                # serial graph: forward + adjoint, 2N steps of device time
                serial_steps[N] = by["serial"]["min_s"] / (2 * N)
                model = lp.mgrit.gpu_time(N, iterations[N], launch, step_time,
                                          serial_step=serial_steps[N], cfactor=args.cfactor,
                                          **options)
                for r in res:
                    emit(impl=r["name"], n_layers=N, min_s=r["min_s"], median_s=r["median_s"],
                         calls=r["calls"], load_avg_after=r["load_avg_after"],
                         iterations=[info["forward"]["iterations"],
                                     info["adjoint"]["iterations"]] if r["name"] == "mgrit"
                         else (2 if r["name"] == "one_shot_d2" else None),
                         speedup_vs_serial=by["serial"]["median_s"] / r["median_s"],
                         model_speedup=model["speedup"] if r["name"] == "mgrit" else None,
                         **common)
                if measured_cross is None and by["mgrit"]["median_s"] < by["serial"]["median_s"]:
                    measured_cross = N
            step = float(np.median(list(serial_steps.values())))
            predicted = lp.mgrit.gpu_crossover(lambda n: iterations.get(n, max(iterations.values())),
                                               launch, step_time, serial_step=step,
                                               n_steps=args.layers, cfactor=args.cfactor,
                                               **options)
            emit(kind="crossover", measured_n=measured_cross, predicted_n=predicted,
                 layers=args.layers, **common)
            log(f"width {w} batch {batch}: crossover measured N={measured_cross}, "
                f"predicted N={predicted} (None: not within {args.layers})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
