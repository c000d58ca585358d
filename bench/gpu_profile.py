"""Where one evaluation's time goes on the GPU: device kernels and copies
against wall time.

For each case (width, batch, depth, serial or MGRIT) one loss and full
gradient on device="cuda" is run a few times untimed (allocations, graph
recording), then `--reps` times under torch.profiler, which sees every kernel
and copy of the process through CUPTI, ours included. Printed per case: the
wall time per call, the device time per call summed over kernels and over
copies, and the kernels and copies with the most device time (count per call,
microseconds per call), and the CUDA runtime calls with the most host time. Wall time far
above the device time means the host (launches, copies, synchronizations,
Python) is the bound.
Rows: {"bench":"gpu_profile", "case", "wall_s", "kernel_s", "copy_s", "top":[...]}.
Needs PyTorch with CUDA beside the CUDA build; without either it says why and
exits 0.
Run: python bench/gpu_profile.py [--case 256,10000,32,serial ...] [--reps 5]
"""

import argparse
import sys
import time

from _common import emit, log

import layerparallel as lp

DEFAULT_CASES = ["256,10000,32,serial", "1024,10000,32,serial", "8,100,1024,serial",
                 "8,100,1024,mgrit"]


def parse_case(text):
    try:
        w, batch, n, kind = text.split(",")
        if kind not in ("serial", "mgrit", "one-shot"):
            raise ValueError
        return int(w), int(batch), int(n), kind
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--case takes WIDTH,BATCH,LAYERS,serial|mgrit|one-shot, got {text!r}") from None


def device_us(event):
    for name in ("self_device_time_total", "self_cuda_time_total"):
        if hasattr(event, name):
            return float(getattr(event, name))
    return 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", type=parse_case, nargs="+",
                    default=[parse_case(c) for c in DEFAULT_CASES])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--top", type=int, default=8)
    args = ap.parse_args()
    if not lp.cuda_available():
        log("bench/gpu_profile.py: nothing to measure: no CUDA build or device")
        return 0
    try:
        import torch
        from torch.profiler import ProfilerActivity, profile
        if not torch.cuda.is_available():
            raise ImportError("PyTorch sees no CUDA device")
    except ImportError as e:
        log(f"bench/gpu_profile.py: needs PyTorch with CUDA ({e})")
        return 0
    for w, batch, n, kind in args.case:
        X, Y = lp.datasets.peaks(n=batch, seed=0)
        net = lp.ODEResNet(2, w, n, 5, T=5.0, activation="relu", device="cuda")
        theta = net.init("he", seed=0)
        theta.data[...] *= 0.5
        solver = {"serial": None,
                  "mgrit": lp.MGRIT(cfactor=4, tol=1e-9, max_iter=50, warm_start=False),
                  "one-shot": lp.MGRIT(cfactor=4, tol=None, rtol=None, max_iter=2,
                                       warm_start=False)}[kind]

        def call():
            return net.loss_and_grad(theta, X, Y, solver=solver)
        for _ in range(3):
            call()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(args.reps):
            call()
        wall = (time.perf_counter() - t0) / args.reps
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(args.reps):
                call()
        rows, api = [], []
        for e in prof.key_averages():
            us = device_us(e)
            if us > 0:
                rows.append((e.key, e.count / args.reps, us / args.reps))
            elif e.key.startswith("cu"):  # runtime and driver calls: host time
                api.append((e.key, e.count / args.reps, e.cpu_time_total / args.reps))
        api.sort(key=lambda r: -r[2])
        rows.sort(key=lambda r: -r[2])
        copies = sum(r[2] for r in rows if "memcpy" in r[0].lower() or "memset" in r[0].lower())
        kernels = sum(r[2] for r in rows) - copies
        case = f"w{w} b{batch} N{n} {kind}"
        log(f"{case}: wall {wall * 1e3:.2f} ms per call, kernels {kernels / 1e3:.2f} ms, "
            f"copies {copies / 1e3:.2f} ms")
        for name, count, us in rows[:args.top]:
            log(f"    {us:10.1f} us  {count:7.1f} x  {name[:90]}")
        log("  host time in CUDA calls:")
        for name, count, us in api[:args.top]:
            log(f"    {us:10.1f} us  {count:7.1f} x  {name[:90]}")
        emit(bench="gpu_profile", case=case, device=lp._core.device_name(0), wall_s=wall,
             kernel_s=kernels * 1e-6, copy_s=copies * 1e-6,
             top=[[name[:120], count, us * 1e-6] for name, count, us in rows[:args.top]],
             host_calls=[[name, count, us * 1e-6] for name, count, us in api[:args.top]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
