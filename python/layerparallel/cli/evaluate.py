"""`layerparallel evaluate MODEL --problem NAME`: loss (and accuracy) of a saved
model on a built-in data set, split as `train` splits it."""

from .. import datasets
from .argtypes import device, fraction, nonnegative_int, positive_int
from .errors import Formatter, UsageError
from .ranks import world


def add_parser(subparsers):
    e = subparsers.add_parser("evaluate", help="loss and accuracy of a model file on a data set",
                              description="Loss and accuracy of a model file (layerparallel "
                                          "train --save) on a built-in problem, with the data "
                                          "and split that train makes from the same flags.",
                              formatter_class=Formatter)
    e.add_argument("model", metavar="MODEL", help="model file (.npz)")
    e.add_argument("--device", type=device, default="cpu",
                    help="where the residual layers run: cpu, cuda or cuda:K")
    e.add_argument("--problem", required=True, choices=datasets.PROBLEMS, help="data set")
    e.add_argument("--samples", type=positive_int, default=5000,
                   help="samples generated before the split")
    e.add_argument("--validation-fraction", type=fraction, default=0.2,
                   help="share of the samples held out for validation")
    e.add_argument("--seed", type=nonnegative_int, default=0, help="seed of data and split")
    e.add_argument("--split", default="validation", choices=["validation", "train", "all"],
                   help="which part of the data")
    e.add_argument("--dtype", default=None, choices=["float64", "float32"],
                   help="evaluate in this precision (default: the model file's; the "
                        "parameters are rounded or widened once)")
    e.set_defaults(func=run)
    return e


def check_fits(net, n_in, n_out, head, what):
    """UsageError unless data with n_in columns, n_out targets and this head fit the net."""
    if (net.n_in, net.n_out, net.head) != (n_in, n_out, head):
        raise UsageError(f"{what} ({n_in} inputs, {n_out} outputs, {head}) does not fit the "
                         f"model ({net.n_in} inputs, {net.n_out} outputs, {net.head})")


def model_inputs(net, X, what):
    """X as the model takes it: images (n, C_in, H, W) for a conv net, rows for a
    dense one (images flattened, as train flattens them); else UsageError."""
    in_shape = getattr(net, "in_shape", None)
    if in_shape is None:
        return X.reshape(X.shape[0], -1) if X.ndim > 2 else X
    if X.ndim == 2 and X.shape[1] == net.n_in:  # rows of flattened images
        return X.reshape((X.shape[0], *in_shape))
    if X.shape[1:] != tuple(in_shape):
        raise UsageError(f"{what} has samples of shape {X.shape[1:]}; the conv model takes "
                         f"images of shape {tuple(in_shape)} (or rows of {net.n_in} values)")
    return X


def run(args, rank_hint=0):
    import numpy as np

    import layerparallel as lp
    from ..modelfile import convert

    comm, rank, _ = world()
    net, theta = lp.load(args.model, comm=comm, device=args.device)
    if args.dtype is not None:
        net, theta = convert(net, theta, args.dtype)
    p = lp.datasets.problem(args.problem, samples=args.samples, seed=args.seed,
                            validation_fraction=args.validation_fraction)
    X, Y = {"validation": (p.X_val, p.Y_val), "train": (p.X, p.Y),
            "all": (np.vstack([p.X, p.X_val]), np.vstack([p.Y, p.Y_val]))}[args.split]
    check_fits(net, int(np.prod(X.shape[1:])), Y.shape[1], p.head, f"problem {args.problem}")
    X = model_inputs(net, X, f"problem {args.problem}")
    loss = net.loss(theta, X, Y)
    # the objective J as training reports it (data term plus regularization)
    line = f"{args.problem} ({args.split}, {X.shape[0]} samples): loss {loss:.6e}"
    if net.head == "classification":
        line += f", accuracy {net.accuracy(theta, X, Y):.4f}"
    if rank == 0:
        print(line)
    return 0
