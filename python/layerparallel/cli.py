"""The `layerparallel` command line (also `python -m layerparallel`).

    layerparallel                 the README's main job (currently: demo)
    layerparallel demo [options]  propagate a net on peaks and report loss,
                                  gradient norm, accuracy and timings
"""

import argparse
import sys
import time


def _demo(args):
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


def build_parser():
    p = argparse.ArgumentParser(prog="layerparallel",
                                description="Layer-parallel training of ODE-ResNets.")
    sub = p.add_subparsers(dest="command")
    d = sub.add_parser("demo", help="propagate and differentiate a network on peaks")
    d.add_argument("--width", type=int, default=8)
    d.add_argument("--layers", type=int, default=64)
    d.add_argument("--samples", type=int, default=5000)
    d.add_argument("--T", type=float, default=5.0)
    d.add_argument("--activation", default="smoothrelu", choices=["relu", "tanh", "smoothrelu"])
    d.add_argument("--init", default="box", choices=["zeros", "uniform", "he", "glorot", "box"])
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
    return p


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv or ["demo"])
    try:
        return args.func(args)
    except ValueError as exc:
        parser.exit(2, f"layerparallel: error: {exc}\n")
