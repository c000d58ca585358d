"""Serial forward+backward of an ODE-ResNet: layerparallel vs numpy GEMM rate vs PyTorch.

For each width: one forward + backward (loss and full gradient) of a 64-layer
net on a batch of 1000, against
  (a) the time numpy needs for the 3N GEMMs of the same shapes (u W^T,
      d W, d^T u per layer) -- the BLAS floor of any implementation;
  (b) the same network written in PyTorch (CPU, eager, autograd), if installed.
With --dtypes float64 float32 (the default) each of the three also runs in
float32 (layerparallel's dtype="float32", numpy's sgemm, PyTorch float32);
float32 variants carry the suffix "_float32". All are timed interleaved by
bench/harness.py (min and median; the processor and the load average are in
every row).
Rows: {"bench":"serial_vs", "impl", "dtype", "width", "n_layers", "batch", "threads",
"median_s", "min_s", "ratio_vs_layerparallel"} (ratio to layerparallel float64).
Run: python bench/serial_vs.py [--threads 2] [--dtypes float64]
"""

import argparse

import numpy as np

from _common import emit, log, use_threads
from harness import Variant, compare

import layerparallel as lp


def numpy_gemms(batch, width, n_layers, rng, dtype=np.float64):
    u = rng.standard_normal((batch, width)).astype(dtype)
    W = rng.standard_normal((width, width)).astype(dtype)
    z = np.empty((batch, width), dtype=dtype)
    g = np.empty((width, width), dtype=dtype)

    def run():
        for _ in range(n_layers):
            np.matmul(u, W.T, out=z)   # forward
            np.matmul(u, W, out=z)     # adjoint
            # gradient: two distinct operands, as in the backward (d^T u); u.T @ u
            # would let numpy run a syrk, half the flops of the GEMM it stands for
            np.matmul(z.T, u, out=g)
    return run


def torch_net(batch, width, n_layers, T, threads, seed, dtype="float64"):
    import torch

    torch.set_num_threads(threads)
    dt = getattr(torch, dtype)
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(batch, 2, generator=g, dtype=dt) * 6 - 3
    labels = torch.randint(0, 5, (batch,), generator=g)
    W_in = (torch.randn(width, 2, generator=g, dtype=dt) * 0.5).requires_grad_()
    b_in = torch.zeros(width, dtype=dt, requires_grad=True)
    W = (torch.randn(n_layers, width, width, generator=g, dtype=dt)
         / width ** 0.5).requires_grad_()
    b = torch.zeros(n_layers, width, dtype=dt, requires_grad=True)
    W_out = (torch.randn(5, width, generator=g, dtype=dt) * 0.5).requires_grad_()
    b_out = torch.zeros(5, dtype=dt, requires_grad=True)
    h = T / n_layers
    params = [W_in, b_in, W, b, W_out, b_out]

    def run():
        for p in params:
            p.grad = None
        u = torch.relu(X @ W_in.T + b_in)
        for n in range(n_layers):
            u = u + h * torch.relu(u @ W[n].T + b[n])
        loss = torch.nn.functional.cross_entropy(u @ W_out.T + b_out, labels)
        loss.backward()
        return loss
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[8, 64, 256])
    ap.add_argument("--layers", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads (default: the package's default)")
    ap.add_argument("--min-seconds", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dtypes", nargs="+", default=["float64", "float32"],
                    choices=["float64", "float32"])
    args = ap.parse_args()
    args.threads = use_threads(args.threads)
    rng = np.random.default_rng(0)
    X, Y = lp.datasets.peaks(n=args.batch, seed=0)
    data = {dt: (X.astype(dt), Y.astype(dt)) for dt in args.dtypes}  # converted once
    for w in args.widths:
        variants = []
        for dt in args.dtypes:
            sfx = "" if dt == "float64" else "_" + dt
            net = lp.ODEResNet(2, w, args.layers, 5, T=5.0, activation="relu", dtype=dt)
            theta = net.init("he", seed=0)
            theta.data[...] *= 0.5
            Xd, Yd = data[dt]
            variants += [Variant("layerparallel" + sfx,
                                 lambda net=net, theta=theta, Xd=Xd, Yd=Yd:
                                 net.loss_and_grad(theta, Xd, Yd)),
                         Variant("numpy_3N_gemm" + sfx,
                                 numpy_gemms(args.batch, w, args.layers, rng, dt))]
            try:
                variants.append(Variant("pytorch_eager" + sfx,
                                        torch_net(args.batch, w, args.layers, 5.0, args.threads,
                                                  0, dt)))
            except ImportError:
                log("torch not installed: PyTorch comparison skipped (pip install torch)")
        base = "layerparallel" if "float64" in args.dtypes else "layerparallel_float32"
        rows = {r["name"]: r for r in compare(variants, rounds=args.rounds,
                                                min_seconds=args.min_seconds * len(variants))}
        ours = rows[base]["median_s"]
        gflop = 3 * args.layers * 2.0 * args.batch * w * w * 1e-9
        for name, r in rows.items():
            extra = {}
            if name.startswith("numpy_3N_gemm"):
                mine = rows[name.replace("numpy_3N_gemm", "layerparallel")]["median_s"]
                extra = dict(gflops_numpy=gflop / r["median_s"],
                             gflops_layerparallel_gemm_equiv=gflop / mine)
            emit(bench="serial_vs", impl=name,
                 dtype="float32" if name.endswith("_float32") else "float64",
                 width=w, n_layers=args.layers, batch=args.batch,
                 threads=args.threads, median_s=r["median_s"], min_s=r["min_s"],
                 calls=r["calls"], ratio_vs_layerparallel=r["median_s"] / ours,
                 processor=r["processor"], load_avg=r["load_avg_before"], **extra)


if __name__ == "__main__":
    main()
