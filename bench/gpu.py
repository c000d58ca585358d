"""Forward + backward on the GPU: layerparallel's CUDA backend vs its CPU backend vs PyTorch.

For each width in 8, 64, 256, 1024 and batch in 1000, 10000: one loss and
full gradient (serial propagation, float64) of an ODE-ResNet of --layers
layers, timed as
  (a) layerparallel device="cuda" (weights, states and adjoints on the device;
      numpy in and out once per call),
  (b) layerparallel device="cpu" with --threads threads (skipped above
      --cpu-max-gflop per call, where it would take minutes),
  (c) the same network in PyTorch eager autograd on the same CUDA device,
plus the MGRIT solve (c = 4, FCF, tol 1e-9) on the device at batch 1000. Each
time is the median of repeated calls after warm-up; CUDA calls include the
host/device copies and end synchronized (the result is back in numpy).
Without a CUDA build or device it says why and exits 0.
Rows: {"bench":"gpu", "impl", "width", "batch", "n_layers", "median_s", "speedup_vs_cpu"}.
Run: python bench/gpu.py [--layers 32] [--threads 16]
"""

import argparse
import os
import sys

from _common import emit, log, median_time

import layerparallel as lp


def torch_net(batch, width, n_layers, T, device, seed=0):
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    f64 = dict(dtype=torch.float64)
    X = (torch.rand(batch, 2, generator=g, **f64) * 6 - 3).to(device)
    labels = torch.randint(0, 5, (batch,), generator=g).to(device)

    def param(*shape, scale=0.0):
        t = torch.randn(*shape, generator=g, **f64) * scale
        return t.to(device).requires_grad_()

    W_in, b_in = param(width, 2, scale=0.5), param(width)
    W, b = param(n_layers, width, width, scale=width ** -0.5), param(n_layers, width)
    W_out, b_out = param(5, width, scale=0.5), param(5)
    params = [W_in, b_in, W, b, W_out, b_out]
    h = T / n_layers

    def run():
        for p in params:
            p.grad = None
        u = torch.relu(X @ W_in.T + b_in)
        for n in range(n_layers):
            u = u + h * torch.relu(u @ W[n].T + b[n])
        loss = torch.nn.functional.cross_entropy(u @ W_out.T + b_out, labels)
        loss.backward()
        # the same contract as ours: results on the host
        return loss.item(), [p.grad.cpu() for p in params]
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 64, 256, 1024])
    ap.add_argument("--batches", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cpu-max-gflop", type=float, default=200.0)
    ap.add_argument("--min-seconds", type=float, default=1.0)
    args = ap.parse_args()
    if not lp.cuda_available():
        why = ("this build has no CUDA backend (pip install . -Ccmake.define.LP_CUDA=ON)"
               if not lp._core.cuda_built else "no CUDA device is visible")
        log(f"bench/gpu.py: nothing to measure: {why}")
        return 0
    lp.set_num_threads(args.threads)
    log("device:", lp._core.device_name(0), "| CPU threads:", args.threads)
    for w in args.widths:
        for batch in args.batches:
            X, Y = lp.datasets.peaks(n=batch, seed=0)
            common = dict(bench="gpu", width=w, batch=batch, n_layers=args.layers,
                          device=lp._core.device_name(0))
            gpu_net = lp.ODEResNet(2, w, args.layers, 5, T=5.0, activation="relu",
                                   device="cuda")
            theta = gpu_net.init("he", seed=0)
            theta.data[...] *= 0.5
            t_gpu, reps = median_time(lambda: gpu_net.loss_and_grad(theta, X, Y),
                                      min_seconds=args.min_seconds)
            gflop = 3 * args.layers * 2.0 * batch * w * w * 1e-9
            t_cpu = None
            if gflop <= args.cpu_max_gflop:
                cpu_net = lp.ODEResNet(2, w, args.layers, 5, T=5.0, activation="relu")
                t_cpu, creps = median_time(lambda: cpu_net.loss_and_grad(theta, X, Y),
                                           min_seconds=args.min_seconds, warmup=1)
                emit(impl="layerparallel_cpu", median_s=t_cpu, reps=creps,
                     threads=args.threads, speedup_vs_cpu=1.0, **common)
            else:
                log(f"width {w} batch {batch}: CPU backend skipped ({gflop:.0f} GFLOP per call)")
            emit(impl="layerparallel_cuda", median_s=t_gpu, reps=reps, gflops=gflop / t_gpu,
                 speedup_vs_cpu=(t_cpu / t_gpu) if t_cpu else None, **common)
            try:
                run = torch_net(batch, w, args.layers, 5.0, "cuda")
            except (ImportError, AssertionError, RuntimeError) as e:
                log(f"PyTorch on CUDA unavailable ({e}): comparison skipped")
            else:
                t, treps = median_time(run, min_seconds=args.min_seconds)
                emit(impl="pytorch_cuda", median_s=t, reps=treps, gflops=gflop / t,
                     speedup_vs_cpu=(t_cpu / t) if t_cpu else None, **common)
        # MGRIT on the device: the sweeps stay there as well.
        X, Y = lp.datasets.peaks(n=1000, seed=0)
        net = lp.ODEResNet(2, w, args.layers, 5, T=5.0, activation="relu", device="cuda")
        theta = net.init("he", seed=0)
        theta.data[...] *= 0.5
        mg = lp.MGRIT(cfactor=4, relax="FCF", tol=1e-9, max_iter=50, warm_start=False)
        t, reps = median_time(lambda: net.loss_and_grad(theta, X, Y, solver=mg),
                              min_seconds=args.min_seconds)
        _, _, info = net.loss_and_grad(theta, X, Y, solver=mg)
        emit(impl="layerparallel_cuda_mgrit", median_s=t, reps=reps, width=w, batch=1000,
             n_layers=args.layers, bench="gpu", device=lp._core.device_name(0),
             iterations=[info["forward"]["iterations"], info["adjoint"]["iterations"]])
    return 0


if __name__ == "__main__":
    sys.exit(main())
