"""`layerparallel demo`: one forward/backward sweep of a network on peaks,
with loss, gradient norms, accuracy and timing."""

import time

from .argtypes import nonnegative_int, positive_float, positive_int
from .errors import Formatter
from .ranks import printer, world


def add_parser(subparsers):
    d = subparsers.add_parser(
        "demo", help="propagate and differentiate a network on peaks",
        description="One forward and one backward sweep of an untrained ODE-ResNet on the "
                    "peaks data: loss, gradient norms, accuracy and timing. Under mpiexec -n K "
                    "the K ranks share the layers (serial propagation across the ranks).",
        formatter_class=Formatter)
    d.add_argument("--width", type=positive_int, default=8, help="state width w")
    d.add_argument("--layers", type=positive_int, default=64, help="residual layers N")
    d.add_argument("--samples", type=positive_int, default=5000, help="peaks samples")
    d.add_argument("--T", type=positive_float, default=5.0, help="final time (h = T/layers)")
    d.add_argument("--activation", default="smoothrelu", choices=["relu", "tanh", "smoothrelu"],
                   help="sigma")
    d.add_argument("--init", default="box", choices=["zeros", "uniform", "he", "glorot", "box"],
                   help="initializer")
    d.add_argument("--seed", type=nonnegative_int, default=0, help="seed of data and weights")
    d.set_defaults(func=run)
    return d


def run(args, rank_hint=0):
    import numpy as np

    import layerparallel as lp

    comm, rank, size = world()
    say = printer(rank)
    X, Y = lp.datasets.peaks(n=args.samples, seed=args.seed)
    net = lp.ODEResNet(n_in=2, width=args.width, n_layers=args.layers, n_out=5, T=args.T,
                       activation=args.activation, gamma_tik=1e-5, comm=comm)
    theta = net.init(args.init, seed=args.seed)
    if comm is not None:
        comm.Barrier()
    t0 = time.perf_counter()
    loss, grad = net.loss_and_grad(theta, X, Y)
    t1 = time.perf_counter()
    acc = net.accuracy(theta, X, Y)
    full = lp.Params(net._global_layout, grad.gather())  # every rank's layers
    say(f"{net}")
    say(f"peaks: {args.samples} samples, init={args.init}, seed={args.seed}")
    say(f"loss            {loss:.6f}")
    say(f"gradient norm   {np.linalg.norm(full.data):.6e}")
    for name in ("W_in", "W", "W_out"):
        say(f"  |dJ/d{name:<5}|  {np.linalg.norm(getattr(full, name)):.6e}")
    say(f"accuracy        {acc:.4f} (untrained)")
    where = f"serial propagation across {size} ranks" if size > 1 else "serial propagation"
    say(f"forward+backward {1e3 * (t1 - t0):.2f} ms ({where})")
    return 0
