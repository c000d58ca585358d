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
Variants: ours, gemm (float64), ours32, gemm32 (float32: our net built with
dtype="float32", numpy's sgemm), torch64, torch32, and im2col, im2col32: our
net with the direct small-channel kernels off (im2col + BLAS for every
layer). "ours" takes the path the narrow-kernel mode (--narrow, default auto:
a timing per process) chooses, recorded in the row as direct / direct32;
each call sets its variant's path, so the interleaved variants do not
disturb one another. They are timed interleaved
by bench/harness.py (one call of each per round, the order rotating) so
machine load hits all alike; min and median over the rounds, with the
processor and the load average. Rows: {"bench": "conv", "layers", "channels",
"batch", "threads", "<variant>_min_s", "<variant>_med_s", "ours_gflops",
"gemm_gflops", "gemm_ratio", "torch64_over_ours", "torch32_over_ours", and the
same with ours32/gemm32}.

With --cpu-time (one thread only) each call is timed by the process's CPU
time instead of the wall clock: on a machine loaded by other processes this
counts only our own cycles (rows say "clock": "cpu").

    python bench/conv.py [--layers 32,128] [--channels 8,16] [--batch 100,1000] [--reps 3]
        [--max-gb G] [--warmup 1] [--narrow auto|on|off] [--cpu-time]
        [--variants ours,gemm,torch64,torch32,ours32,gemm32,im2col,im2col32]
"""

import argparse
import gc
import time

import numpy as np

from _common import emit, log
from harness import Variant, compare, machine

import layerparallel as lp

H = W = 28
K = 3
CLASSES = 10
VARIANTS = ("ours", "gemm", "torch64", "torch32", "ours32", "gemm32", "im2col", "im2col32")


def data(batch, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0, 1, size=(batch, 1, H, W))
    Y = np.eye(CLASSES)[rng.integers(0, CLASSES, size=batch)]
    return X, Y


def direct_path(channels, dtype):
    """Whether our residual layers take the direct kernels under the current mode."""
    uses = lp._core.uses_conv_direct if dtype == "float64" else lp._core.uses_conv_direct32
    return bool(uses(channels, K))


def ours(layers, channels, batch, dtype="float64", direct=None):
    """One loss and gradient; ``direct`` the path (None: the current mode's)."""
    net = lp.ConvODEResNet((1, H, W), channels, layers, CLASSES, T=1.0, kernel_size=K,
                           activation="relu", dtype=dtype)
    theta = net.init("he", seed=0)
    X, Y = (a.astype(dtype) for a in data(batch))  # converted once, not per call
    if direct is None:
        direct = direct_path(channels, dtype)
    path = "on" if direct else "off"

    def run():
        lp.set_narrow_kernels(path)  # no timing under on/off
        return net.loss_and_grad(theta, X, Y)
    return run


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


def gemm_floor(layers, channels, batch, dtype=np.float64):
    """A run of the lowered products alone: every layer's three products (patches x
    kernel forward and adjoint, d^T patches for the gradient) at numpy's BLAS,
    on a 10-image block of rows repeated to cover the batch -- the same flops
    as one evaluation, with no im2col, activations or memory traffic of states.
    Of one product over the block's rows and products on cache-sized chunks of
    it (as our kernels do), the faster is used."""
    rng = np.random.default_rng(0)
    rows = 10 * H * W
    patch = K * K * channels
    cols = rng.standard_normal((rows, patch)).astype(dtype)
    Kp = rng.standard_normal((patch, channels)).astype(dtype)
    d = rng.standard_normal((rows, channels)).astype(dtype)
    z = np.empty((rows, channels), dtype=dtype)
    G = np.empty((channels, patch), dtype=dtype)
    chunk = (256 << 10) // np.dtype(dtype).itemsize // patch

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


def state_bytes(layers, channels, batch, itemsize=8):
    """Our serial sweep's stored states and pre-activations: (2 L + 1) B H W C values."""
    return (2 * layers + 1) * batch * H * W * channels * itemsize


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=ints, default=[32, 128])
    ap.add_argument("--channels", type=ints, default=[8, 16])
    ap.add_argument("--batch", type=ints, default=[100, 1000])
    ap.add_argument("--reps", type=int, default=3, help="timed rounds (one call per variant each)")
    ap.add_argument("--warmup", type=int, default=1,
                    help="untimed calls of each variant first (0 for the big sizes: then the "
                         "min of 2+ rounds is a warm call)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time each call by the process's CPU time (one thread only)")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--narrow", choices=("auto", "on", "off"), default="auto",
                    help="the mode that chooses the path of ours/ours32 (auto: a timing)")
    ap.add_argument("--variants", default=",".join(VARIANTS),
                    help="which of " + ", ".join(VARIANTS) + " to time (ours/gemm: float64, "
                         "ours32/gemm32: float32)")
    ap.add_argument("--max-gb", type=float, default=None,
                    help="skip sizes whose stored states (ours + PyTorch's, about twice "
                         "ours) exceed this many GB")
    args = ap.parse_args()
    if args.cpu_time and args.threads != 1:
        ap.error("--cpu-time needs --threads 1 (the CPU time of several threads adds up)")
    clock = time.process_time if args.cpu_time else time.perf_counter
    lp.set_num_threads(args.threads)
    have_torch = False
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(args.threads)
            have_torch = True
        except ImportError:
            log("PyTorch not installed: comparing with the GEMM floor only")
    wanted = [v for v in args.variants.split(",") if v]
    unknown = set(wanted) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    log(f"machine {machine()}, threads {args.threads}")
    for batch in args.batch:
        for layers in args.layers:
            for channels in args.channels:
                need = state_bytes(layers, channels, batch) * (2 if have_torch else 1) / 1e9
                if args.max_gb is not None and need > args.max_gb:
                    log(f"skipped L={layers} C={channels} B={batch}: about {need:.1f} GB of "
                        f"stored states > --max-gb {args.max_gb}")
                    continue
                lp.set_narrow_kernels(args.narrow)
                direct = {d: direct_path(channels, d) for d in ("float64", "float32")}
                make = {"ours": lambda: ours(layers, channels, batch, direct=direct["float64"]),
                        "gemm": lambda: gemm_floor(layers, channels, batch),
                        "im2col": lambda: ours(layers, channels, batch, direct=False),
                        "ours32": lambda: ours(layers, channels, batch, "float32",
                                               direct["float32"]),
                        "im2col32": lambda: ours(layers, channels, batch, "float32", False),
                        "gemm32": lambda: gemm_floor(layers, channels, batch, np.float32)}
                if have_torch:
                    make["torch64"] = lambda: torch_net(layers, channels, batch, torch.float64)
                    make["torch32"] = lambda: torch_net(layers, channels, batch, torch.float32)
                variants = [Variant(k, make[k]()) for k in wanted if k in make]
                # one call per variant and round, interleaved, after the warm-up calls
                res = {r["name"]: r for r in compare(variants, rounds=args.reps,
                                                     min_seconds=0.0, warmup=args.warmup,
                                                     clock=clock)}
                flops = 3 * 2 * batch * H * W * K * K * channels ** 2 * layers
                first = next(iter(res.values()))
                row = {"bench": "conv", "layers": layers, "channels": channels,
                       "batch": batch, "threads": args.threads, "rounds": args.reps,
                       "warmup": args.warmup, "narrow": args.narrow,
                       "clock": "cpu" if args.cpu_time else "wall",
                       "direct": direct["float64"], "direct32": direct["float32"],
                       "processor": first["processor"],
                       "load_avg_before": first["load_avg_before"],
                       "load_avg_after": first["load_avg_after"]}
                for k, r in res.items():
                    row[f"{k}_min_s"] = r["min_s"]
                    row[f"{k}_med_s"] = r["median_s"]
                for ours_k, gemm_k, torch_k in (("ours", "gemm", "torch64"),
                                                ("ours32", "gemm32", "torch32"),
                                                ("im2col", None, None),
                                                ("im2col32", None, None)):
                    if ours_k not in res:
                        continue
                    t = res[ours_k]["min_s"]
                    row[f"{ours_k}_gflops"] = flops / t / 1e9
                    if gemm_k in res:
                        row[f"{gemm_k}_gflops"] = flops / res[gemm_k]["min_s"] / 1e9
                        row[f"{gemm_k}_ratio"] = res[gemm_k]["min_s"] / t
                    for k in ("torch64", "torch32"):
                        if k in res:
                            row[f"{k}_over_{ours_k}"] = res[k]["min_s"] / t
                emit(**row)
                del variants
                gc.collect()


if __name__ == "__main__":
    main()
