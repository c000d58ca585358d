"""`layerparallel demo`: one forward/backward sweep of a network on peaks,
with loss, gradient norms, accuracy and timing."""

import time

from .argtypes import nonnegative_int, positive_float, positive_int


def add_parser(subparsers):
    d = subparsers.add_parser("demo", help="propagate and differentiate a network on peaks")
    d.add_argument("--width", type=positive_int, default=8)
    d.add_argument("--layers", type=positive_int, default=64)
    d.add_argument("--samples", type=positive_int, default=5000)
    d.add_argument("--T", type=positive_float, default=5.0)
    d.add_argument("--activation", default="smoothrelu", choices=["relu", "tanh", "smoothrelu"])
    d.add_argument("--init", default="box", choices=["zeros", "uniform", "he", "glorot", "box"])
    d.add_argument("--seed", type=nonnegative_int, default=0)
    d.set_defaults(func=run)
    return d


def run(args, rank_hint=0):
    import numpy as np

    import layerparallel as lp

    X, Y = lp.datasets.peaks(n=args.samples, seed=args.seed)
    net = lp.ODEResNet(n_in=2, width=args.width, n_layers=args.layers, n_out=5, T=args.T,
                       activation=args.activation, gamma_tik=1e-5)
    theta = net.init(args.init, seed=args.seed)
    t0 = time.perf_counter()
    loss, grad = net.loss_and_grad(theta, X, Y)
    t1 = time.perf_counter()
    acc = net.accuracy(theta, X, Y)
    print(f"{net}")
    print(f"peaks: {args.samples} samples, init={args.init}, seed={args.seed}")
    print(f"loss            {loss:.6f}")
    print(f"gradient norm   {np.linalg.norm(grad.data):.6e}")
    for name in ("W_in", "W", "W_out"):
        print(f"  |dJ/d{name:<5}|  {np.linalg.norm(getattr(grad, name)):.6e}")
    print(f"accuracy        {acc:.4f} (untrained)")
    print(f"forward+backward {1e3 * (t1 - t0):.2f} ms (serial propagation)")
    return 0
