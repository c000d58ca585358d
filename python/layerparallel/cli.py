"""The `layerparallel` command line (also `python -m layerparallel`).

    layerparallel                     the README's main job: train on peaks (serial, L-BFGS)
    layerparallel train [options]     train an ODE-ResNet, serially or layer-parallel (--mgrit)
    layerparallel train --config run.toml [options]
    layerparallel plot LOG.jsonl [LOG2.jsonl ...] [-o fig.png] [--x wall_time] [--y loss]
    layerparallel demo [options]      propagate a net on peaks and report loss,
                                      gradient norm, accuracy and timings

Under ``mpiexec -n K layerparallel train ...`` the K ranks share the layers
(MGRIT with --mgrit, serial propagation across the ranks without); only rank 0
prints and writes the log. A user error (bad flag or value, missing file,
unusable checkpoint) prints one line ``layerparallel: error: ...`` on stderr
and exits with status 2; a diverging MGRIT solve exits with status 1.
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time

PROBLEMS = ("peaks", "xor", "sine", "two_polynomials", "digits")
REGRESSION = ("sine", "two_polynomials")
OPTIMIZERS = ("lbfgs", "adam", "sgd", "gd")
DEFAULT_LR = {"lbfgs": 1.0, "adam": 1e-2, "sgd": 1e-2, "gd": 1e-1}


class UsageError(Exception):
    """A user error: reported as one line, exit status 2."""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except None and booleans."""

    def _get_help_string(self, action):
        if action.default is None or isinstance(action.default, bool):
            return action.help
        return super()._get_help_string(action)


class _Parser(argparse.ArgumentParser):
    """argparse, but errors raise UsageError (one line, no usage block)."""

    def error(self, message):
        raise UsageError(message)


# --------------------------------------------------------------------------- argument types

def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return v


def _nonnegative_int(text):
    try:
        v = int(text)
    except ValueError:
        v = -1
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be a nonnegative integer, got {text!r}")
    return v


def _float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return v


def _positive_float(text):
    v = _float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return v


def _nonnegative_float(text):
    v = _float(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return v


def _fraction(text):
    v = _float(text)
    if not 0.0 < v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text!r}")
    return v


def _optional_tol(text):
    if str(text).lower() in ("none", "off", "0"):
        return None
    return _positive_float(text)


def _cfactor(text):
    parts = [p.strip() for p in str(text).split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(
            f"must be an integer >= 2 or a comma-separated list of them, got {text!r}")
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------- MPI

def _env_rank():
    """This process's rank before MPI is initialized (launcher variables), else 0."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None:
        try:
            return mpi.COMM_WORLD.Get_rank()
        except Exception:  # MPI finalized or not usable
            pass
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def _world():
    """COMM_WORLD if it has several ranks (else None), this rank, the size."""
    from . import _preload

    MPI = _preload.MPI
    if MPI is None:
        return None, 0, 1
    world = MPI.COMM_WORLD
    if world.Get_size() > 1:
        return world, world.Get_rank(), world.Get_size()
    return None, 0, 1


def _agree(comm, error):
    """Raise UsageError on every rank if any rank has an error message (rank
    0's, else the first); for checks that only some ranks make."""
    if comm is not None:
        errors = comm.allgather(error)
        error = next((e for e in errors if e is not None), None)
    if error is not None:
        raise UsageError(error)


# --------------------------------------------------------------------------- config files

def _load_toml(path):
    try:
        import tomllib as toml
    except ImportError:  # Python < 3.11
        try:
            import tomli as toml
        except ImportError:
            raise UsageError(f"reading {path} needs Python >= 3.11 or the tomli package "
                             "(pip install tomli)") from None
    try:
        with open(path, "rb") as f:
            return toml.load(f)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror}") from None
    except toml.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from None


def _config_tokens(path, train_parser):
    """The [train] table of a TOML file as command-line tokens (so every value
    goes through the same parsing and checks as a flag)."""
    data = _load_toml(path)
    table = data.get("train")
    if not isinstance(table, dict):
        raise UsageError(f"{path}: expected a [train] table")
    options = {}
    for action in train_parser._actions:
        for s in action.option_strings:
            if s.startswith("--"):
                options[s[2:].replace("-", "_")] = (s, action)
    tokens = []
    for key, value in table.items():
        if key == "config" or key == "help" or key not in options:
            raise UsageError(f"{path}: unknown key {key!r} in [train]")
        flag, action = options[key]
        if isinstance(action, argparse.BooleanOptionalAction):
            if not isinstance(value, bool):
                raise UsageError(f"{path}: {key} must be true or false, got {value!r}")
            base = action.option_strings[0]  # "--mgrit" (then "--no-mgrit")
            on = value if flag == base else not value
            tokens.append(base if on else "--no-" + base[2:])
        elif isinstance(value, bool) or isinstance(value, dict):
            raise UsageError(f"{path}: {key} must not be {value!r}")
        elif isinstance(value, list):
            if not value or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    for v in value):
                raise UsageError(f"{path}: {key} must be a list of numbers, got {value!r}")
            tokens.append(f"{flag}={','.join(str(v) for v in value)}")
        else:  # --flag=value: a value starting with "-" stays a value
            tokens.append(f"{flag}={value}")
    return tokens


# --------------------------------------------------------------------------- the parser

def build_parser():
    p = _Parser(prog="layerparallel",
                description="Layer-parallel training of ODE-ResNets with MGRIT. Without a "
                            "command: the main job (train on peaks).")
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", metavar="{train,steps,plot,demo}")

    t = sub.add_parser("train", help="train an ODE-ResNet (serial or layer-parallel MGRIT)",
                       description="Train an ODE-ResNet. Under mpiexec -n K the K ranks share "
                                   "the layers. Flags override --config.",
                       formatter_class=_Formatter)
    t.add_argument("--config", metavar="TOML",
                   help="read options from the [train] table of a TOML file (keys are the "
                        "long option names with underscores); flags override it")
    g = t.add_argument_group("data")
    g.add_argument("--problem", default="peaks", choices=PROBLEMS,
                   help="data set (sine, two_polynomials: regression)")
    g.add_argument("--samples", type=_positive_int, default=5000,
                   help="samples generated before the split (xor has 4, "
                        "digits at most 1797)")
    g.add_argument("--validation-fraction", type=_fraction, default=0.2,
                   help="share of the samples held out for validation")
    g.add_argument("--seed", type=_nonnegative_int, default=0,
                   help="seed of data, split, initialization and batches")
    g = t.add_argument_group("network")
    g.add_argument("--width", type=_positive_int, default=8,
                   help="state width w")
    g.add_argument("--layers", type=_positive_int, default=64,
                   help="residual layers N")
    g.add_argument("--T", type=_positive_float, default=5.0, help="final time (h = T/layers)")
    g.add_argument("--activation", default="smoothrelu", choices=["relu", "tanh", "smoothrelu"],
                   help="sigma")
    g.add_argument("--opening", default="activation", choices=["activation", "linear",
                                                               "padding"],
                   help="opening layer")
    g.add_argument("--init", default="box", choices=["zeros", "uniform", "he", "glorot", "box"],
                   help="initializer")
    g.add_argument("--magnitude", type=_positive_float, default=1.0,
                   help="box / uniform initialization magnitude")
    g.add_argument("--gamma-tik", type=_nonnegative_float, default=1e-5,
                   help="Tikhonov regularization")
    g.add_argument("--gamma-ddt", type=_nonnegative_float, default=0.0,
                   help="time-derivative regularization")
    g.add_argument("--gamma-out", type=_nonnegative_float, default=0.0,
                   help="opening/head regularization")
    g = t.add_argument_group("optimization")
    g.add_argument("--optimizer", default="lbfgs", choices=OPTIMIZERS,
                   help="optimizer")
    g.add_argument("--lr", type=_positive_float, default=None,
                   help="learning rate (default: lbfgs 1, adam 0.01, sgd 0.01, gd 0.1)")
    g.add_argument("--memory", type=_positive_int, default=5, help="L-BFGS memory")
    g.add_argument("--momentum", type=_nonnegative_float, default=0.9, help="SGD momentum")
    g.add_argument("--iterations", type=_positive_int, default=150,
                   help="optimizer steps")
    g.add_argument("--batch-size", type=_positive_int, default=None,
                   help="mini-batch size (default: full batch)")
    g.add_argument("--lsgd", action=argparse.BooleanOptionalAction, default=False,
                   help="hybrid least squares / gradient descent (regression problems)")
    g.add_argument("--target-accuracy", type=_float, default=None,
                   help="stop once the validation accuracy reaches it")
    g.add_argument("--validate-every", type=_positive_int, default=10,
                   help="validate (and print a row) every so many steps")
    g = t.add_argument_group("layer-parallel MGRIT")
    g.add_argument("--mgrit", action=argparse.BooleanOptionalAction, default=False,
                   help="propagate forward and adjoint by MGRIT over the layers")
    g.add_argument("--cfactor", type=_cfactor, default=4, help="coarsening factor (or c1,c2,...)")
    g.add_argument("--levels", type=_positive_int, default=10, help="maximum levels")
    g.add_argument("--min-coarse", type=_positive_int, default=2,
                   help="stop coarsening at this many intervals")
    g.add_argument("--relax", default="FCF", help="F, FCF, FCFCF, ...")
    g.add_argument("--cycle", default="V", choices=["V", "F"],
                   help="MGRIT cycle")
    g.add_argument("--tol", type=_optional_tol, default=1e-9,
                   help="absolute residual tolerance ('none': none)")
    g.add_argument("--rtol", type=_optional_tol, default=None, help="relative tolerance")
    g.add_argument("--max-iter", type=_nonnegative_int, default=50, help="MGRIT cycles at most")
    g.add_argument("--one-shot", type=_positive_int, default=None, metavar="D",
                   help="one-shot training: D warm-started MGRIT cycles per solve")
    g.add_argument("--storage", default="all", choices=["all", "C"],
                   help="keep all states or C-points only")
    g = t.add_argument_group("nested iteration")
    g.add_argument("--nested", type=_positive_int, default=None, metavar="LEVELS",
                   help="train --layers/2^(LEVELS-1) layers first, then refine by 2 per level")
    g.add_argument("--schedule", type=_cfactor, default=None,
                   help="optimizer steps per level, coarsest first (e.g. 200,125,75)")
    g.add_argument("--interp", default="constant", choices=["constant", "linear"],
                   help="interpolation of the weights in layer-time")
    g = t.add_argument_group("output")
    g.add_argument("--log", metavar="JSONL", help="write the history, one JSON object per "
                                                  "iteration")
    g.add_argument("--checkpoint", metavar="DIR", help="checkpoint directory")
    g.add_argument("--checkpoint-every", type=_positive_int, default=10,
                   help="steps between checkpoints")
    g.add_argument("--resume", action=argparse.BooleanOptionalAction, default=False,
                   help="continue from --checkpoint")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="tqdm progress bar when tqdm is installed (--no-progress: none)")
    g.add_argument("--threads", type=_positive_int, default=None,
                   help="threads of the compiled core per rank")
    t.set_defaults(func=_train)

    from . import steps_cli

    steps_cli.add_parser(sub)
    pl = sub.add_parser("plot", help="plot JSON-lines training logs (needs matplotlib)",
                        description="Draw loss and accuracy of training logs against "
                                    "iterations or wall time.")
    pl.add_argument("logs", nargs="+", metavar="LOG.jsonl")
    pl.add_argument("-o", "--output", help="figure file (default: the first log's name "
                                           "with .png)")
    pl.add_argument("--x", default="iteration", choices=["iteration", "wall_time"])
    pl.add_argument("--y", action="append", metavar="KEY",
                    help="a history key to plot (repeat or comma-separate; default: loss and "
                         "val_accuracy, or val_loss for regression)")
    pl.add_argument("--label", action="append", help="legend entry per log (default: names)")
    pl.add_argument("--title")
    pl.set_defaults(func=_plot)

    d = sub.add_parser("demo", help="propagate and differentiate a network on peaks")
    d.add_argument("--width", type=_positive_int, default=8)
    d.add_argument("--layers", type=_positive_int, default=64)
    d.add_argument("--samples", type=_positive_int, default=5000)
    d.add_argument("--T", type=_positive_float, default=5.0)
    d.add_argument("--activation", default="smoothrelu", choices=["relu", "tanh", "smoothrelu"])
    d.add_argument("--init", default="box", choices=["zeros", "uniform", "he", "glorot", "box"])
    d.add_argument("--seed", type=_nonnegative_int, default=0)
    d.set_defaults(func=_demo)
    p._train_parser = t
    return p


def _version():
    try:
        from importlib.metadata import version

        return version("layerparallel")
    except Exception:
        return "unknown"


# --------------------------------------------------------------------------- train

def _problem(lp, args):
    """(X_train, Y_train, X_val, Y_val, head, description)."""
    import numpy as np

    name, seed = args.problem, args.seed
    if name == "xor":
        X, Y = lp.datasets.xor()
        Y = np.ascontiguousarray(np.hstack([1.0 - Y, Y]))  # one-hot: classes 0, 1
        return X, Y, X, Y, "classification", "xor: the 4 patterns, trained and validated on all"
    if name == "peaks":
        X, Y = lp.datasets.peaks(n=args.samples, seed=seed)
    elif name == "sine":
        X, Y = lp.datasets.sine(n=args.samples, seed=seed)
    elif name == "two_polynomials":
        X, Y = lp.datasets.two_polynomials(n=args.samples, seed=seed)
    elif name == "digits":
        X, Y = lp.datasets.digits(seed=seed)
        X, Y = X[:args.samples], Y[:args.samples]
    else:  # argparse's choices keep this out; a config goes through them too
        raise UsageError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    Xt, Yt, Xv, Yv = lp.datasets.train_validation_split(X, Y, args.validation_fraction,
                                                        seed=seed)
    head = "regression" if name in REGRESSION else "classification"
    return Xt, Yt, Xv, Yv, head, (f"{name}: {Xt.shape[0]} training / {Xv.shape[0]} "
                                  f"validation samples")


def _optimizer(lp, args):
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    if args.optimizer == "lbfgs":
        return lp.optim.LBFGS(memory=args.memory, lr=lr)
    if args.optimizer == "adam":
        return lp.optim.Adam(lr=lr)
    if args.optimizer == "sgd":
        return lp.optim.SGD(lr=lr, momentum=args.momentum)
    return lp.optim.GD(lr=lr)


def _json_value(v):
    if isinstance(v, bool) or v is None or isinstance(v, (str, int)):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if float(f).is_integer() and hasattr(v, "dtype") and v.dtype.kind in "iu":
        return int(f)
    return f if math.isfinite(f) else None  # NaN/Inf are not JSON


def _json_line(record):
    return json.dumps({k: _json_value(v) for k, v in record.items()}, allow_nan=False)


def _write_atomic(path, lines):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".layerparallel.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


class _Table:
    """The history table: one row per validation (every validate_every steps and the last)."""

    def __init__(self, classification, mgrit):
        self.cols = [("iter", 6, "d", "iteration"), ("loss", 11, ".4e", "loss"),
                     ("grad norm", 10, ".3e", "grad_norm"), ("val loss", 11, ".4e", "val_loss")]
        if classification:
            self.cols.append(("val acc", 8, ".4f", "val_accuracy"))
        if mgrit:
            self.cols += [("MG fwd", 6, "d", "mgrit_forward_iterations"),
                          ("MG adj", 6, "d", "mgrit_adjoint_iterations")]
        self.cols.append(("time [s]", 9, ".2f", "wall_time"))

    def header(self):
        h = "  ".join(f"{name:>{w}}" for name, w, _, _ in self.cols)
        return h + "\n" + "-" * len(h)

    def row(self, r):
        return "  ".join(f"{_fmt(r.get(key), spec):>{w}}" for _, w, spec, key in self.cols)


def _train(args, rank_hint=0):
    import layerparallel as lp

    comm, rank, size = _world()
    say = print if rank == 0 else (lambda *a, **k: None)
    if args.threads is not None:
        lp.set_num_threads(args.threads)
    if args.one_shot is not None and not args.mgrit:
        raise UsageError("--one-shot needs --mgrit")
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint DIR")
    if args.nested is not None:
        if args.checkpoint or args.target_accuracy is not None:
            raise UsageError("--nested takes neither --checkpoint nor --target-accuracy")
        if args.schedule is None:
            args.schedule = [args.iterations] * args.nested
        args.schedule = [args.schedule] if isinstance(args.schedule, int) else args.schedule
        if len(args.schedule) != args.nested:
            raise UsageError(f"--schedule needs {args.nested} entries, one per level")
        args.iterations = sum(args.schedule)

    Xt, Yt, Xv, Yv, head, described = _problem(lp, args)
    n_out = Yt.shape[1]
    net = lp.ODEResNet(n_in=Xt.shape[1], width=args.width, n_layers=args.layers, n_out=n_out,
                       T=args.T, activation=args.activation, opening=args.opening, head=head,
                       gamma_tik=args.gamma_tik, gamma_ddt=args.gamma_ddt,
                       gamma_out=args.gamma_out, comm=comm)
    theta = net.init(args.init, seed=args.seed, magnitude=args.magnitude)
    optimizer = _optimizer(lp, args)
    solver = None
    if args.mgrit:
        solver = lp.MGRIT(cfactor=args.cfactor, max_levels=args.levels,
                          min_coarse=args.min_coarse, relax=args.relax, cycle=args.cycle,
                          tol=args.tol, rtol=args.rtol, max_iter=args.max_iter,
                          storage=args.storage, comm=comm)

    # The log file: opened by rank 0 before training, every rank learns whether it worked.
    log, error = None, None
    if args.log and rank == 0:
        try:
            log = open(args.log, "w", encoding="utf-8")
        except OSError as exc:
            error = f"cannot write the log {args.log}: {exc.strerror}"
    _agree(comm, error)

    classification = head == "classification"
    table = _Table(classification, solver is not None)
    bar = False
    if args.progress and rank == 0:
        try:
            import tqdm  # noqa: F401
            bar = True
        except ImportError:
            bar = False

    say(f"layerparallel {_version()}: {net!r}"
        + (f", {net.n_params} parameters" if size == 1 else ""))
    say(f"  data       {described}")
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    say(f"  optimizer  {optimizer!r}, {args.iterations} iterations, {batch}"
        + (", LSGD" if args.lsgd else ""))
    where = f"{size} ranks" if size > 1 else "1 rank"
    threads = lp.get_num_threads()
    if solver is None:
        say(f"  solver     serial propagation, {where}, {threads} thread(s) per rank")
    else:
        mode = (f"one-shot, {args.one_shot} cycle(s) per solve" if args.one_shot
                else "to tolerance")
        say(f"  solver     {solver!r}, {mode}, {where}, {threads} thread(s) per rank")
    if args.checkpoint:
        say(f"  checkpoint {args.checkpoint} every {args.checkpoint_every} iterations"
            + (", resuming" if args.resume else ""))
    say()
    live = not bar  # without a progress bar, print the table as it grows
    if live:
        say(table.header())
    every = args.validate_every

    def callback(it, record):
        if log is not None:
            log.write(_json_line(record) + "\n")
            log.flush()
        if live and (it % every == 0 or it == args.iterations
                     or record.get("val_loss") is not None):
            say(table.row(record), flush=True)

    t0 = time.perf_counter()
    try:
        if args.nested is not None:
            say(f"  nested     {args.nested} levels, schedule {args.schedule}, "
                f"{args.interp} interpolation")
            _, theta, history = lp.nested_train(
                net, Xt, Yt, optimizer, levels=args.nested, schedule=args.schedule,
                interp=args.interp, init=args.init, magnitude=args.magnitude, seed=args.seed,
                solver=solver, one_shot=args.one_shot, validation=(Xv, Yv),
                validate_every=every, batch_size=args.batch_size, lsgd=args.lsgd,
                callback=callback)
        else:
            history = lp.train(net, theta, Xt, Yt, optimizer, iterations=args.iterations,
                               solver=solver, one_shot=args.one_shot,
                               batch_size=args.batch_size, validation=(Xv, Yv),
                               validate_every=every, target_accuracy=args.target_accuracy,
                               seed=args.seed, lsgd=args.lsgd, checkpoint=args.checkpoint,
                               checkpoint_every=args.checkpoint_every, resume=args.resume,
                               callback=callback, progress=bar)
    finally:
        if log is not None:
            log.close()
    elapsed = time.perf_counter() - t0
    records = history.records()
    if args.log and rank == 0:  # the whole history (also what a resumed run had before)
        _write_atomic(args.log, [_json_line(r) for r in records])

    if not live:
        say(table.header())
        for i, r in enumerate(records):
            if (r["iteration"] % every == 0 or i == len(records) - 1
                    or r.get("val_loss") is not None):
                say(table.row(r))
    say()
    last = records[-1] if records else {}
    wall = last.get("wall_time")
    wall = elapsed if wall is None else wall
    its = last.get("iteration", 0)
    if classification:
        result = (f"validation accuracy {_fmt(history.last('val_accuracy'), '.4f')}, "
                  f"validation loss {_fmt(history.last('val_loss'), '.4e')}")
    else:
        result = f"validation loss {_fmt(history.last('val_loss'), '.4e')}"
    stopped = " (target accuracy reached)" if history.stopped_early else ""
    say(f"final: {result}, training loss {_fmt(last.get('loss'), '.4e')} after {its} "
        f"iterations{stopped}, wall time {wall:.2f} s")
    if args.log:
        say(f"log: {args.log}")
    return 0


# --------------------------------------------------------------------------- plot

def _plot(args, rank_hint=0):
    from . import plot as lpplot

    keys = None
    if args.y:
        keys = [k.strip() for item in args.y for k in item.split(",") if k.strip()]
    labels = args.label or [os.path.splitext(os.path.basename(p))[0] for p in args.logs]
    if len(labels) != len(args.logs):
        raise UsageError(f"{len(labels)} --label for {len(args.logs)} logs")
    records = []
    for path in args.logs:
        try:
            records.append(lpplot.read_log(path))
        except FileNotFoundError:
            raise UsageError(f"log file not found: {path}") from None
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    out = args.output or os.path.splitext(args.logs[0])[0] + ".png"
    try:
        lpplot.plot_history(records, labels, x=args.x, out=out, y=keys, title=args.title)
    except ImportError:
        raise UsageError("plot needs matplotlib: pip install matplotlib "
                         "(or pip install 'layerparallel[plot]')") from None
    if rank_hint == 0:
        print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- demo

def _demo(args, rank_hint=0):
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


# --------------------------------------------------------------------------- main

def _parse(parser, argv):
    if not argv:
        argv = ["train"]  # the main job
    elif argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["train"] + argv  # `layerparallel --iterations 50` trains
    args = parser.parse_args(argv)
    if args.command is None:
        raise UsageError("a command is required: train, plot or demo")
    if args.command == "train" and args.config:
        tokens = _config_tokens(args.config, parser._train_parser)
        try:
            parser.parse_args(["train"] + tokens)
        except UsageError as exc:
            raise UsageError(f"{args.config}: {exc}") from None
        rest = argv[argv.index("train") + 1:]
        args = parser.parse_args(["train"] + tokens + rest)
    return args


def _error(message, status, rank):
    if rank == 0:
        print(f"layerparallel: error: {message}", file=sys.stderr, flush=True)
    return status


def main(argv=None):
    """Run the command line; returns the exit status (0, 1 for a diverged
    solve, 2 for a user error, 130 when interrupted)."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    rank = _env_rank()
    debug = bool(os.environ.get("LAYERPARALLEL_TRACEBACK"))
    try:
        parser = build_parser()
        args = _parse(parser, argv)
        return args.func(args, rank_hint=rank)
    except UsageError as exc:
        return _error(str(exc), 2, _env_rank())
    except ImportError as exc:  # an optional dependency (scikit-learn for digits, ...)
        if debug:
            raise
        return _error(str(exc).splitlines()[0], 2, _env_rank())
    except ValueError as exc:  # the library's argument checks, CheckpointError
        if debug:
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        return _error(msg, 2, _env_rank())
    except OSError as exc:  # files: rank-local, so every rank reports its own
        if debug:
            raise
        where = f" [rank {_env_rank()}]" if _env_rank() else ""
        name = f"{exc.filename}: " if exc.filename else ""
        print(f"layerparallel: error:{where} {name}{exc.strerror or exc}", file=sys.stderr,
              flush=True)
        return 2
    except KeyboardInterrupt:
        return _error("interrupted", 130, _env_rank())
    except RuntimeError as exc:
        diverged = getattr(sys.modules.get("layerparallel._core"), "MGRITDiverged", None)
        if diverged is not None and isinstance(exc, diverged) and not debug:
            msg = " ".join(str(exc).split())
            return _error(f"MGRIT diverged: {msg} (try more --one-shot cycles, "
                          "--relax FCF or a smaller --lr)", 1, _env_rank())
        raise
