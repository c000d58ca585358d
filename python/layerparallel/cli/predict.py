"""`layerparallel predict MODEL --input X.npy --output Y.npy`: a saved model
applied to the rows (or images, for a conv model) of a .npy array."""

from .argtypes import device
from .errors import Formatter, UsageError
from .ranks import agree, world

WHAT = ("output", "probabilities", "labels", "states")


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="apply a model file to the rows of a .npy array",
                              description="Apply a model file (layerparallel train --save) to "
                                          "the rows of X.npy (samples x inputs) and write "
                                          "the result as .npy (atomically, by rank 0).",
                              formatter_class=Formatter)
    p.add_argument("model", metavar="MODEL", help="model file (.npz)")
    p.add_argument("--device", type=device, default="cpu",
                   help="where the residual layers run: cpu, cuda or cuda:K")
    p.add_argument("--input", required=True, metavar="X.npy",
                   help="inputs, one row per sample (a conv model: images (n, C, H, W) "
                        "or rows of C H W values)")
    p.add_argument("--output", required=True, metavar="Y.npy", help="where to write the result")
    p.add_argument("--what", default="output", choices=WHAT,
                   help="head output (logits or regression values), softmax probabilities "
                        "or class labels (classification), or the final states u_N")
    p.add_argument("--dtype", default=None, choices=["float64", "float32"],
                   help="evaluate in this precision (default: the model file's; the "
                        "parameters are rounded or widened once)")
    p.set_defaults(func=run)
    return p


def _read_input(path, net):
    import numpy as np

    from .evaluate import model_inputs

    try:
        X = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"input {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"input {path} is not a .npy array: {exc}") from None
    n_in, in_shape = net.n_in, getattr(net, "in_shape", None)
    if not isinstance(X, np.ndarray) or X.ndim < 2 or X.shape[0] == 0 \
            or int(np.prod(X.shape[1:])) != n_in:
        shape = getattr(X, "shape", None)
        images = "" if in_shape is None else \
            f" or images of shape (n, {', '.join(map(str, in_shape))})"
        raise UsageError(f"input {path} must be a 2-d array with {n_in} columns "
                         f"(the model's inputs){images}, got shape {shape}")
    if X.dtype.kind not in "fiub":
        raise UsageError(f"input {path} must hold real numbers, got dtype {X.dtype}")
    X = model_inputs(net, X, f"input {path}")
    return np.ascontiguousarray(X, dtype=np.float64)


def run(args, rank_hint=0):
    import numpy as np

    import layerparallel as lp
    from ..modelfile import convert
    from ..modelfile import write_atomic

    comm, rank, _ = world()
    net, theta = lp.load(args.model, comm=comm, device=args.device)
    if args.dtype is not None:
        net, theta = convert(net, theta, args.dtype)
    if args.what in ("probabilities", "labels") and net.head != "classification":
        raise UsageError(f"--what {args.what} needs a classification model")
    X, error = None, None
    try:  # every rank reads the file; a rank that cannot makes them all stop
        X = _read_input(args.input, net)
    except UsageError as exc:
        error = str(exc)
    agree(comm, error)
    if args.what == "states":
        Y = net.forward(theta, X)
    else:
        Y = net.predict(theta, X)
        if args.what == "probabilities":
            Y = np.exp(Y - Y.max(axis=1, keepdims=True))
            Y /= Y.sum(axis=1, keepdims=True)
        elif args.what == "labels":
            Y = np.argmax(Y, axis=1)
    error = None
    if rank == 0:
        try:
            write_atomic(args.output, lambda f: np.save(f, Y))
        except OSError as exc:
            error = f"cannot write {args.output}: {exc.strerror or exc}"
    if comm is not None:
        error = comm.bcast(error, root=0)
    if error is not None:
        raise UsageError(error)
    if rank == 0:
        print(f"{args.output}: {args.what} of {X.shape[0]} samples, shape {Y.shape}")
    return 0
