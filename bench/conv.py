"""Conv ODE-ResNet forward + backward: layerparallel vs PyTorch eager vs the GEMM rate.

One loss-and-gradient evaluation (forward sweep, adjoint sweep, every
layer's kernel and bias gradient) of a conv ODE-ResNet on 28 x 28 one-channel
images (conv opening, N residual conv layers with C channels and 3 x 3
kernels, average pooling, 10 classes), against
  (a) the same network in PyTorch eager (conv2d + autograd), float64 and float32;
  (b) the GEMM floor: the three lowered products per layer (patches x kernel
      forward and adjoint, d^T patches for the gradient: 6 B H W 9 C^2 flops)
      alone, with numpy's BLAS on a 10-image block of rows repeated to cover
      the batch (gemm_ratio = GEMM time / our time: our share of the GEMM rate).
Implementations alternate (ours, torch64, torch32, ours, ...) so machine load
hits all alike. Rows: {"bench": "conv", "layers", "channels", "batch", "threads",
"ours_min_s", "ours_med_s", "gemm_min_s", ..., "torch64_min_s", ..., "gemm_gflops",
"ours_gflops", "gemm_ratio", "torch64_over_ours", "torch32_over_ours"}.

    python bench/conv.py [--layers 32,128] [--channels 8,16] [--batch 100,1000] [--reps 3]
"""

import argparse
import gc
import os
import time

import numpy as np

from _common import emit, log

import layerparallel as lp

H = W = 28
K = 3
CLASSES = 10


def data(batch, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(batch, 1, H, W))
    Y = np.eye(CLASSES)[rng.integers(0, CLASSES, size=batch)]
    return X, Y


def ours(layers, channels, batch):
    net = lp.ConvODEResNet((1, H, W), channels, layers, CLASSES, T=1.0, kernel_size=K,
                           activation="relu")
    theta = net.init("he", seed=0)
    X, Y = data(batch)
    return lambda: net.loss_and_grad(theta, X, Y)


def torch_net(layers, channels, batch, dtype):
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    X = torch.rand(batch, 1, H, W, generator=g, dtype=dtype)
    labels = torch.randint(0, CLASSES, (batch,), generator=g)
    std = (2.0 / (channels * K * K)) ** 0.5
    K_in = (torch.randn(channels, 1, K, K, generator=g, dtype=dtype) * 3 ** -1).requires_grad_()
    b_in = torch.zeros(channels, dtype=dtype, requires_grad=True)
    Ks = (torch.randn(layers, channels, channels, K, K, generator=g, dtype=dtype) * std
          ).requires_grad_()
    bs = torch.zeros(layers, channels, dtype=dtype, requires_grad=True)
    W_out = (torch.randn(CLASSES, channels, generator=g, dtype=dtype) * 0.3).requires_grad_()
    b_out = torch.zeros(CLASSES, dtype=dtype, requires_grad=True)
    params = [K_in, b_in, Ks, bs, W_out, b_out]
    h = 1.0 / layers

    def run():
        for p in params:
            p.grad = None
        u = torch.relu(F.conv2d(X, K_in, b_in, padding=K // 2))
        for n in range(layers):
            u = u + h * torch.relu(F.conv2d(u, Ks[n], bs[n], padding=K // 2))
        loss = F.cross_entropy(u.mean(dim=(2, 3)) @ W_out.T + b_out, labels)
        loss.backward()
    return run


def gemm_floor(layers, channels, batch):
    """A run of the lowered products alone: every layer's three products (patches x
    kernel forward and adjoint, d^T patches for the gradient) at numpy's BLAS,
    on a 10-image block of rows repeated to cover the batch -- the same flops
    as one evaluation, with no im2col, activations or memory traffic of states.
    Of one product over the block's rows and products on cache-sized chunks of
    it (as our kernels do), the faster is used."""
    rng = np.random.default_rng(0)
    rows = 10 * H * W
    patch = K * K * channels
    cols = rng.standard_normal((rows, patch))
    Kp = rng.standard_normal((patch, channels))
    d = rng.standard_normal((rows, channels))
    z = np.empty((rows, channels))
    G = np.empty((channels, patch))
    chunk = 32768 // patch

    def whole():
        np.matmul(cols, Kp, out=z)      # forward: patches x packed kernel
        np.matmul(cols, Kp, out=z)      # adjoint: patches of d x flipped kernel
        np.matmul(d.T, cols, out=G)     # gradient: d^T x patches

    def chunked():
        for r in range(0, rows, chunk):
            np.matmul(cols[r:r + chunk], Kp, out=z[r:r + chunk])
            np.matmul(cols[r:r + chunk], Kp, out=z[r:r + chunk])
            np.matmul(d[r:r + chunk].T, cols[r:r + chunk], out=G)

    def best_of(fn):
        fn()
        t0 = time.perf_counter()
        for _ in range(5):
            fn()
        return time.perf_counter() - t0
    block = whole if best_of(whole) <= best_of(chunked) else chunked
    repeats = layers * batch // 10

    def run():
        for _ in range(repeats):
            block()
    return run


def ints(s):
    return [int(v) for v in s.split(",")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=ints, default=[32, 128])
    ap.add_argument("--channels", type=ints, default=[8, 16])
    ap.add_argument("--batch", type=ints, default=[100, 1000])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    lp.set_num_threads(args.threads)
    have_torch = False
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            have_torch = True
        except ImportError:
            log("PyTorch not installed: comparing with the GEMM floor only")
    log(f"load average {os.getloadavg()}, threads {args.threads}")
    for batch in args.batch:
        for layers in args.layers:
            for channels in args.channels:
                impls = {"ours": ours(layers, channels, batch),
                         "gemm": gemm_floor(layers, channels, batch)}
                if have_torch:
                    impls["torch64"] = torch_net(layers, channels, batch, torch.float64)
                    impls["torch32"] = torch_net(layers, channels, batch, torch.float32)
                times = {k: [] for k in impls}
                for k, f in impls.items():  # warm-up: allocations, first-touch
                    f()
                for _ in range(args.reps):
                    for k, f in impls.items():
                        t0 = time.perf_counter()
                        f()
                        times[k].append(time.perf_counter() - t0)
                flops = 3 * 2 * batch * H * W * K * K * channels ** 2 * layers
                row = {"bench": "conv", "layers": layers, "channels": channels,
                       "batch": batch, "threads": args.threads, "load": os.getloadavg()[0]}
                for k, t in times.items():
                    row[f"{k}_min_s"] = min(t)
                    row[f"{k}_med_s"] = float(np.median(t))
                row["ours_gflops"] = flops / min(times["ours"]) / 1e9
                row["gemm_gflops"] = flops / min(times["gemm"]) / 1e9
                row["gemm_ratio"] = min(times["gemm"]) / min(times["ours"])
                for k in ("torch64", "torch32"):
                    if k in times:
                        row[f"{k}_over_ours"] = min(times[k]) / min(times["ours"])
                emit(**row)
                del impls
                gc.collect()


if __name__ == "__main__":
    main()
