"""`layerparallel train`: train an ODE-ResNet, serially or layer-parallel.

Also the main job (`layerparallel` without a command). Under ``mpiexec -n K``
the K ranks share the layers (MGRIT with --mgrit, serial propagation across
the ranks without); only rank 0 prints and writes the log.
"""

import argparse
import os
import sys
import time

from .. import datasets, optim
from .argtypes import (batch_block, cfactor, device, fraction, grid_shape, nonnegative_float,
                       nonnegative_int, optional_tol, positive_float, positive_int, real,
                       schedule)
from .errors import Formatter, UsageError, version
from .output import Table, fmt, json_line, write_atomic
from .ranks import agree, world
from .resources import check_memory


def add_parser(subparsers):
    """Add the `train` subcommand; returns its parser (``--config`` reads its options)."""
    t = subparsers.add_parser("train", help="train an ODE-ResNet (serial or layer-parallel MGRIT)",
                       description="Train an ODE-ResNet. Under mpiexec -n K the K ranks share "
                                   "the layers. Flags override --config.",
                       formatter_class=Formatter)
    t.add_argument("--config", metavar="TOML",
                   help="read options from the [train] table of a TOML file (keys are the "
                        "long option names with underscores); flags override it")
    g = t.add_argument_group("data")
    g.add_argument("--problem", default="peaks", choices=datasets.PROBLEMS,
                   help="data set (sine, two_polynomials: regression)")
    g.add_argument("--samples", type=positive_int, default=5000,
                   help="samples generated before the split (xor has 4, "
                        "digits at most 1797)")
    g.add_argument("--validation-fraction", type=fraction, default=0.2,
                   help="share of the samples held out for validation")
    g.add_argument("--seed", type=nonnegative_int, default=0,
                   help="seed of data, split, initialization and batches")
    g.add_argument("--data-dir", metavar="DIR", default=None,
                   help="folder with your downloaded files (mnist: the idx files; "
                        "indian-pines: Indian_pines.mat and Indian_pines_gt.mat)")
    g = t.add_argument_group("network")
    g.add_argument("--model", default="dense", choices=["dense", "conv"],
                   help="dense residual layers, or convolutional ones (image problems)")
    g.add_argument("--width", type=positive_int, default=8,
                   help="state width w (dense)")
    g.add_argument("--channels", type=positive_int, default=8,
                   help="channels C of the states (conv)")
    g.add_argument("--kernel-size", type=positive_int, default=3,
                   help="odd kernel size k (conv)")
    g.add_argument("--pooling", default="average", choices=["average", "flatten"],
                   help="head features of a conv net: channel means or the whole state")
    g.add_argument("--layers", type=positive_int, default=64,
                   help="residual layers N")
    g.add_argument("--T", type=positive_float, default=5.0, help="final time (h = T/layers)")
    g.add_argument("--device", type=device, default="cpu",
                   help="where the residual layers run: cpu, cuda (one GPU per rank on a "
                        "node) or cuda:K; cuda needs the CUDA build and a visible device"),
    g.add_argument("--activation", default="smoothrelu", choices=["relu", "tanh", "smoothrelu"],
                   help="sigma")
    g.add_argument("--opening", default="activation", choices=["activation", "linear",
                                                               "padding"],
                   help="opening layer")
    g.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                   help="scalar of parameters, states and gradients (the data are "
                        "rounded to float32 once)")
    g.add_argument("--init", default="box", choices=["zeros", "uniform", "he", "glorot", "box"],
                   help="initializer")
    g.add_argument("--magnitude", type=positive_float, default=1.0,
                   help="box / uniform initialization magnitude")
    g.add_argument("--gamma-tik", type=nonnegative_float, default=1e-5,
                   help="Tikhonov regularization")
    g.add_argument("--gamma-ddt", type=nonnegative_float, default=0.0,
                   help="time-derivative regularization")
    g.add_argument("--gamma-out", type=nonnegative_float, default=0.0,
                   help="opening/head regularization")
    g = t.add_argument_group("optimization")
    g.add_argument("--optimizer", default="lbfgs", choices=optim.NAMES,
                   help="optimizer")
    g.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: lbfgs 1, adam 0.01, sgd 0.01, gd 0.1)")
    g.add_argument("--memory", type=positive_int, default=5, help="L-BFGS memory")
    g.add_argument("--momentum", type=nonnegative_float, default=0.9, help="SGD momentum")
    g.add_argument("--iterations", type=positive_int, default=150,
                   help="optimizer steps")
    g.add_argument("--batch-size", type=positive_int, default=None,
                   help="mini-batch size (default: full batch)")
    g.add_argument("--lsgd", action=argparse.BooleanOptionalAction, default=False,
                   help="hybrid least squares / gradient descent (regression problems)")
    g.add_argument("--target-accuracy", type=real, default=None,
                   help="stop once the validation accuracy reaches it")
    g.add_argument("--grad-tol", type=positive_float, default=None,
                   help="stop once a step's gradient norm is at most this (with --nested: "
                        "end the level and refine)")
    g.add_argument("--validate-every", type=positive_int, default=10,
                   help="validate (and print a row) every so many steps")
    g = t.add_argument_group("layer-parallel MGRIT")
    g.add_argument("--mgrit", action=argparse.BooleanOptionalAction, default=False,
                   help="propagate forward and adjoint by MGRIT over the layers")
    g.add_argument("--cfactor", type=cfactor, default=4, help="coarsening factor (or c1,c2,...)")
    g.add_argument("--levels", type=positive_int, default=10, help="maximum levels")
    g.add_argument("--min-coarse", type=positive_int, default=2,
                   help="stop coarsening at this many intervals")
    g.add_argument("--relax", default="FCF", help="F, FCF, FCFCF, ...")
    g.add_argument("--cycle", default="V", choices=["V", "F"],
                   help="MGRIT cycle")
    g.add_argument("--tol", type=optional_tol, default=1e-9,
                   help="absolute residual tolerance ('none': none)")
    g.add_argument("--rtol", type=optional_tol, default=None, help="relative tolerance")
    g.add_argument("--max-iter", type=nonnegative_int, default=50, help="MGRIT cycles at most")
    g.add_argument("--one-shot", type=positive_int, default=None, metavar="D",
                   help="one-shot training: D warm-started MGRIT cycles per solve")
    g.add_argument("--adaptive-one-shot", action=argparse.BooleanOptionalAction, default=True,
                   help="raise the cycles when L-BFGS's line search fails or stalls, lower "
                        "them when steps are accepted at once (column d)")
    g.add_argument("--one-shot-max", type=positive_int, default=None, metavar="D",
                   help="most cycles adaptive one-shot may use (default 8 x --one-shot)")
    g.add_argument("--storage", default="all", choices=["all", "C"],
                   help="keep all states or C-points only")
    g.add_argument("--batch-block", type=batch_block, default=None, metavar="ROWS",
                   help="fixed-cycle solves (--one-shot, or --tol none) run on blocks of this "
                        "many rows, each in cache ('auto', the default: chosen from the cache "
                        "on one rank; 0: the whole batch)")
    g = t.add_argument_group("method and process grid")
    g.add_argument("--method", default=None, choices=METHODS,
                   help="serial propagation, layer-parallel MGRIT, parameter decomposition "
                        "(local steps on layer subdomains + global L-BFGS) or data "
                        "decomposition (SAPTS trust regions on micro-batches); default: "
                        "mgrit with --mgrit, else serial (--optimizer is used by serial "
                        "and mgrit only)")
    g.add_argument("--grid", type=grid_shape, default=None, metavar="LxD",
                   help="L layer ranks x D data ranks (default: all ranks share the layers)")
    g.add_argument("--layer-ranks", type=positive_int, default=None,
                   help="ranks sharing the layers (the rest split the data)")
    g.add_argument("--data-ranks", type=positive_int, default=None,
                   help="data groups splitting every batch")
    g.add_argument("--local-optimizer", default="adam", choices=optim.NAMES,
                   help="dd-params: the subdomains' optimizer")
    g.add_argument("--local-steps", type=nonnegative_int, default=None,
                   help="dd-params: local steps per outer iteration (default 5); dd-data: "
                        "trust-region steps per micro-batch (default 3)")
    g.add_argument("--local-lr", type=positive_float, default=None,
                   help="dd-params: the local optimizer's learning rate")
    g.add_argument("--subdomains", type=positive_int, default=None,
                   help="dd-params: subdomains (default: one per layer rank)")
    g.add_argument("--micro-batches", type=positive_int, default=None,
                   help="dd-data: micro-batches per mini-batch (default: one per data group)")
    g.add_argument("--radius", type=positive_float, default=0.1,
                   help="dd-data: initial trust-region radius")
    g.add_argument("--tr-model", default="lsr1", choices=["lsr1", "lbfgs"],
                   help="dd-data: quasi-Newton model")
    g.add_argument("--subproblem", default="steihaug", choices=["steihaug", "cauchy"],
                   help="dd-data: trust-region subproblem")
    g = t.add_argument_group("nested iteration")
    g.add_argument("--nested", type=positive_int, default=None, metavar="LEVELS",
                   help="train --layers/2^(LEVELS-1) layers first, then refine by 2 per level")
    g.add_argument("--schedule", type=schedule, default=None,
                   help="optimizer steps per level, coarsest first (e.g. 200,125,75)")
    g.add_argument("--interp", default="constant", choices=["constant", "linear"],
                   help="interpolation of the weights in layer-time")
    g = t.add_argument_group("output")
    g.add_argument("--log", metavar="JSONL", help="write the history, one JSON object per "
                                                  "iteration")
    g.add_argument("--save", metavar="MODEL", help="write the trained model to this file "
                                                   "(.npz; any rank count can load it)")
    g.add_argument("--checkpoint", metavar="DIR",
                   help="checkpoint directory: one file per rank per checkpoint "
                        "(checkpoint.<iteration>.rank<r>.npz, with the MGRIT warm states) and "
                        "checkpoint.json, written once every rank's file is; checked to be "
                        "writable before training starts")
    g.add_argument("--checkpoint-every", type=positive_int, default=10,
                   help="steps between checkpoints")
    g.add_argument("--checkpoint-warm-states", action=argparse.BooleanOptionalAction,
                   default=True,
                   help="keep the MGRIT warm states in checkpoints (uncompressed: 16 bytes per "
                        "sample, state entry and layer, far more than the parameters); "
                        "--no-checkpoint-warm-states keeps checkpoints small, but a resumed "
                        "one-shot run's first solves start cold, so its numbers differ from "
                        "an uninterrupted run's")
    g.add_argument("--resume", action=argparse.BooleanOptionalAction, default=False,
                   help="continue from the newest checkpoint in --checkpoint complete on every "
                        "rank (written by another number of ranks: redistributed, MGRIT warm "
                        "states dropped)")
    g.add_argument("--check-data", action=argparse.BooleanOptionalAction, default=True,
                   help="under mpiexec, check that every rank holds the same data (a digest "
                        "of it); the configuration and data shapes are always checked")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a tqdm progress bar on stderr when it is a terminal (default: when "
                        "tqdm is installed; --progress requires tqdm; --no-progress: none); "
                        "the table is printed either way")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="threads of the compiled core per rank")
    t.set_defaults(func=run)
    return t


METHODS = ("serial", "mgrit", "dd-params", "dd-data")


def _grid(lp, args, comm, size):
    """The process grid from --grid or --layer-ranks/--data-ranks (checked first)."""
    layers, data = args.layer_ranks, args.data_ranks
    if args.grid is not None:
        if layers is not None or data is not None:
            raise UsageError("give --grid or --layer-ranks/--data-ranks, not both")
        layers, data = args.grid
    if layers is not None and data is not None and layers * data != size:
        raise UsageError(f"a {layers}x{data} grid needs {layers * data} ranks, running on {size}")
    for name, v in (("--layer-ranks", layers), ("--data-ranks", data)):
        if v is not None and size % v:
            raise UsageError(f"{name} {v} does not divide the {size} ranks")
    grid = lp.ProcessGrid(comm, layers=layers, data=data)
    if grid.layers > args.layers:
        raise UsageError(f"{grid.layers} layer ranks but only {args.layers} layers")
    return grid


def _method(args):
    """--method checked against the other flags, before any work."""
    method = args.method or ("mgrit" if args.mgrit else "serial")
    if method == "serial" and args.mgrit:
        raise UsageError("--method serial contradicts --mgrit")
    if method == "mgrit":
        args.mgrit = True
    if method.startswith("dd-"):
        if args.nested is not None or args.lsgd:
            raise UsageError(f"--method {method} takes neither --nested nor --lsgd")
    if method == "dd-data" and args.local_steps == 0:
        raise UsageError("--local-steps must be >= 1 for --method dd-data")
    if method != "dd-params" and args.subdomains is not None:
        raise UsageError("--subdomains needs --method dd-params")
    if method != "dd-data" and args.micro_batches is not None:
        raise UsageError("--micro-batches needs --method dd-data")
    return method


def _decomposition(lp, args, method, grid):
    if method == "dd-params":
        S = grid.layers if args.subdomains is None else args.subdomains
        if S > args.layers:
            raise UsageError(f"--subdomains {S} is more than the {args.layers} layers")
        if S % grid.layers:
            raise UsageError(f"--subdomains {S} must be a multiple of the {grid.layers} "
                             "layer ranks")
        steps = 5 if args.local_steps is None else args.local_steps
        return lp.dd.ParameterDecomposition(args.local_optimizer, steps, subdomains=S,
                                            memory=args.memory, local_lr=args.local_lr)
    M = grid.data if args.micro_batches is None else args.micro_batches
    if M % grid.data:
        raise UsageError(f"--micro-batches {M} must be a multiple of the {grid.data} data ranks")
    steps = 3 if args.local_steps is None else args.local_steps
    return lp.dd.DataDecomposition(steps, micro_batches=M, radius=args.radius,
                                   model=args.tr_model, subproblem=args.subproblem,
                                   memory=args.memory)


def _optimizer(lp, args):
    options = {"memory": args.memory} if args.optimizer == "lbfgs" else {}
    if args.optimizer == "sgd":
        options["momentum"] = args.momentum
    return lp.optim.create(args.optimizer, lr=args.lr, **options)


def _network(lp, args, grid, method, Xt, Xv, n_out, head):
    """(net, Xt, Xv): the --model network for the data (images flattened for a dense net)."""
    images = Xt.ndim == 4
    if args.model == "conv":
        if not images:
            raise UsageError(f"--model conv needs image data (digits-images or mnist), "
                             f"not --problem {args.problem}")
        if args.device != "cpu":
            raise UsageError(f"--model conv runs on the cpu only, not --device {args.device}")
        if method not in ("serial", "mgrit") or grid.data > 1:
            raise UsageError("--model conv runs with --method serial or mgrit on layer ranks "
                             "only (no data ranks)")
        net = lp.ConvODEResNet(Xt.shape[1:], args.channels, args.layers, n_out, T=args.T,
                               kernel_size=args.kernel_size, activation=args.activation,
                               opening=args.opening, pooling=args.pooling,
                               gamma_tik=args.gamma_tik, gamma_ddt=args.gamma_ddt,
                               gamma_out=args.gamma_out, comm=grid.layer_comm,
                               dtype=args.dtype)
        return net, Xt, Xv
    if images:
        Xt, Xv = Xt.reshape(Xt.shape[0], -1), Xv.reshape(Xv.shape[0], -1)
    net = grid.network(n_in=Xt.shape[1], width=args.width, n_layers=args.layers, n_out=n_out,
                       T=args.T, activation=args.activation, opening=args.opening, head=head,
                       gamma_tik=args.gamma_tik, gamma_ddt=args.gamma_ddt,
                       gamma_out=args.gamma_out, device=args.device, dtype=args.dtype)
    return net, Xt, Xv


def _progress_bar(wanted, rank):
    """Whether to show the tqdm bar: only on rank 0 with a terminal on stderr
    (a batch job's log gets the table, not hundreds of carriage returns).
    ``--progress`` without tqdm installed is an error, caught before any work."""
    if wanted is False:
        return False
    try:
        import tqdm  # noqa: F401
    except ImportError:
        if wanted:
            raise UsageError("--progress needs tqdm: pip install tqdm "
                             "(or pip install 'layerparallel[progress]')") from None
        return False
    return rank == 0 and sys.stderr.isatty()


def _open_log(path, comm, rank):
    """Rank 0 opens the log before any work; every rank learns whether it could."""
    log, error = None, None
    if path and rank == 0:
        try:
            log = open(path, "w", encoding="utf-8")
        except OSError as exc:
            error = f"cannot write the log {path}: {exc.strerror}"
    agree(comm, error)
    return log


def run(args, rank_hint=0):
    import layerparallel as lp

    comm, rank, size = world()
    say = print if rank == 0 else (lambda *a, **k: None)
    if args.threads is not None:
        lp.set_num_threads(args.threads)
    method = _method(args)
    grid = _grid(lp, args, comm, size)
    if args.one_shot is not None and not args.mgrit:
        raise UsageError("--one-shot needs --mgrit")
    if args.resume and not args.checkpoint:
        raise UsageError("--resume needs --checkpoint DIR")
    if args.checkpoint and os.path.exists(args.checkpoint) and not os.path.isdir(args.checkpoint):
        raise UsageError(f"--checkpoint {args.checkpoint} exists and is not a directory")
    if args.nested is not None:
        if args.checkpoint or args.target_accuracy is not None:
            raise UsageError("--nested takes neither --checkpoint nor --target-accuracy")
        if args.schedule is None:
            args.schedule = [args.iterations] * args.nested
        args.schedule = [args.schedule] if isinstance(args.schedule, int) else args.schedule
        if len(args.schedule) != args.nested:
            raise UsageError(f"--schedule needs {args.nested} entries, one per level")
        args.iterations = sum(args.schedule)
    bar = _progress_bar(args.progress, rank)
    log = _open_log(args.log, comm, rank)
    try:
        return _train(lp, args, comm, rank, size, say, bar, log, method, grid)
    finally:
        if log is not None:
            log.close()


def _train(lp, args, comm, rank, size, say, bar, log, method, grid):
    if args.problem in datasets.FILES and args.data_dir is None:
        raise UsageError(f"--problem {args.problem} reads your downloaded files: "
                         "give --data-dir DIR")
    problem, error = None, None
    try:  # files may be missing on some ranks only
        problem = lp.datasets.problem(args.problem, samples=args.samples, seed=args.seed,
                                      validation_fraction=args.validation_fraction,
                                      data_dir=args.data_dir)
    except (OSError, ValueError) as exc:
        error = " ".join(str(exc).split())
    agree(comm, error)
    Xt, Yt, Xv, Yv = problem
    head, described = problem.head, problem.description
    n_out = Yt.shape[1]
    if args.batch_size is not None and args.batch_size < grid.data:
        raise UsageError(f"--batch-size {args.batch_size} is smaller than the {grid.data} "
                         "data ranks")
    if grid.data > 1 and args.nested is not None:
        raise UsageError("--nested runs on layer ranks only (no data ranks)")
    optimizer = (_decomposition(lp, args, method, grid) if method.startswith("dd-")
                 else _optimizer(lp, args))
    net, Xt, Xv = _network(lp, args, grid, method, Xt, Xv, n_out, head)
    check_memory(net, Xt.shape[0], args, comm)  # before the parameters are allocated
    theta = net.init(args.init, seed=args.seed, magnitude=args.magnitude)
    solver = None
    if args.mgrit:
        # One-shot solves run a fixed number of cycles whatever --tol says.
        fixed = args.one_shot is not None or (args.tol is None and args.rtol is None)
        if args.batch_block and not fixed:
            raise UsageError("--batch-block needs a fixed number of cycles: --one-shot D, or "
                             "--tol none (and no --rtol)")
        solver = grid.mgrit(cfactor=args.cfactor, max_levels=args.levels,
                            min_coarse=args.min_coarse, relax=args.relax, cycle=args.cycle,
                            tol=None if args.one_shot else args.tol,
                            rtol=None if args.one_shot else args.rtol, max_iter=args.max_iter,
                            storage=args.storage,
                            batch_block=args.batch_block if fixed else None)

    # A model file that could not be written is found out now, not after training.
    error = None
    if args.save and rank == 0:
        folder = os.path.dirname(os.path.abspath(args.save))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            error = f"cannot write the model file {args.save}: no writable directory {folder}"
    agree(comm, error)

    classification = head == "classification"
    table = Table(classification, solver is not None, nested=args.nested is not None,
                  one_shot=args.one_shot is not None)

    say(f"layerparallel {version()}: {net!r}"
        + (f", {net.n_params} parameters" if size == 1 else ""))
    say(f"  data       {described}")
    batch = "full batch" if args.batch_size is None else f"batches of {args.batch_size}"
    say(f"  optimizer  {optimizer!r}, {args.iterations} iterations, {batch}"
        + (", LSGD" if args.lsgd else ""))
    where = f"{size} ranks" if size > 1 else "1 rank"
    if size > 1:
        where += f" as a {grid.layers}x{grid.data} grid (layers x data)"
    say(f"  method     {method}")
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
    if args.nested is not None:
        say(f"  nested     {args.nested} levels of {net.n_layers // 2 ** (args.nested - 1)} "
            f"to {net.n_layers} layers, schedule {args.schedule}, {args.interp} interpolation")
    say()
    # The table grows as training runs: it is what a batch job's log shows.
    # Beside a progress bar, rows go through tqdm.write so the bar stays below.
    if bar:
        from tqdm import tqdm

        row_out = tqdm.write
    else:
        def row_out(line):
            print(line, flush=True)
    say(table.header())
    every = args.validate_every
    trained = []

    def callback(it, record):
        trained.append(it)
        if log is not None:
            log.write(json_line(record) + "\n")
            log.flush()
        if rank == 0 and (it % every == 0 or it == args.iterations
                          or record.get("val_loss") is not None):
            row_out(table.row(record))

    t0 = time.perf_counter()
    if args.nested is not None:
        net, theta, history = lp.nested_train(
            net, Xt, Yt, optimizer, levels=args.nested, schedule=args.schedule,
            interp=args.interp, init=args.init, magnitude=args.magnitude, seed=args.seed,
            solver=solver, one_shot=args.one_shot, validation=(Xv, Yv),
            validate_every=every, batch_size=args.batch_size, lsgd=args.lsgd,
            callback=callback, check_data=args.check_data, grad_tol=args.grad_tol)
    else:
        history = lp.train(net, theta, Xt, Yt, optimizer, iterations=args.iterations,
                           solver=solver, one_shot=args.one_shot,
                           adaptive_one_shot=args.adaptive_one_shot,
                           one_shot_max=args.one_shot_max,
                           batch_size=args.batch_size, validation=(Xv, Yv),
                           validate_every=every, target_accuracy=args.target_accuracy,
                           seed=args.seed, lsgd=args.lsgd, checkpoint=args.checkpoint,
                           checkpoint_every=args.checkpoint_every, resume=args.resume,
                           callback=callback, progress=bar, check_data=args.check_data,
                           checkpoint_warm_states=args.checkpoint_warm_states,
                           grad_tol=args.grad_tol)
    elapsed = time.perf_counter() - t0
    records = history.records()
    if args.log and rank == 0:  # the whole history (also what a resumed run had before)
        write_atomic(args.log, [json_line(r) for r in records])

    if not trained:
        say(f"(nothing to train: the checkpoint in {args.checkpoint} already holds "
            f"{records[-1]['iteration'] if records else 0} of {args.iterations} iterations)")
    say()
    last = records[-1] if records else {}
    wall = last.get("wall_time")
    wall = elapsed if wall is None else wall
    its = last.get("iteration", 0)
    if classification:
        result = (f"validation accuracy {fmt(history.last('val_accuracy'), '.4f')}, "
                  f"validation loss {fmt(history.last('val_loss'), '.4e')}")
    else:
        result = f"validation loss {fmt(history.last('val_loss'), '.4e')}"
    stopped = {"target_accuracy": " (target accuracy reached)",
               "grad_tol": " (gradient norm below --grad-tol)"}.get(history.stop_reason, "")
    say(f"final: {result}, training loss {fmt(last.get('loss'), '.4e')} after {its} "
        f"iterations{stopped}, wall time {wall:.2f} s")
    if args.log:
        say(f"log: {args.log}")
    if args.save:
        lp.save(args.save, net, theta)
        say(f"model: {args.save}")
    return 0
