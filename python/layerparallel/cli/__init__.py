"""The `layerparallel` command line (also `python -m layerparallel`).

    layerparallel                     the main job: train on peaks (serial, L-BFGS)
    layerparallel train [options]     train an ODE-ResNet, serially or layer-parallel (--mgrit)
    layerparallel train --config run.toml [options]
    layerparallel steps [options]     MGRIT over training steps
    layerparallel plot LOG.jsonl [LOG2.jsonl ...] [-o fig.png] [--x wall_time] [--y loss]
    layerparallel demo [options]      one forward/backward sweep on peaks
    layerparallel evaluate MODEL --problem NAME     loss/accuracy of a model file
    layerparallel predict MODEL --input X.npy --output Y.npy

One module per command (``add_parser(subparsers)`` and ``run(args)``);
``argtypes`` parses values, ``config`` reads TOML files, ``ranks`` knows MPI,
``output`` writes logs and tables. A user error (bad flag or value, missing
file, unusable checkpoint) prints one line ``layerparallel: error: ...`` on
stderr and exits with status 2; a diverging MGRIT solve exits with status 1.
A warning prints one line ``layerparallel: warning: ...`` (the library warns
on rank 0 for what all ranks agree on; another rank's line names it).
"""

import os
import sys
import warnings

from . import demo, evaluate, plot, predict, steps, train
from .config import config_tokens
from .errors import Parser, UsageError, version
from .ranks import env_rank

__all__ = ["main", "build_parser", "parse", "UsageError"]

COMMANDS = (train, steps, plot, demo, evaluate, predict)


def build_parser():
    p = Parser(prog="layerparallel",
               description="Layer-parallel training of ODE-ResNets with MGRIT. Without a "
                           "command: the main job (train on peaks).")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    names = ",".join(m.__name__.rsplit(".", 1)[1] for m in COMMANDS)
    sub = p.add_subparsers(dest="command", metavar="{" + names + "}")
    p.command_parsers = {m.__name__.rsplit(".", 1)[1]: m.add_parser(sub) for m in COMMANDS}
    return p


def parse(parser, argv):
    """Parse argv; no command is the main job (`train`), leading flags go to
    `train`, and ``--config`` prepends its file's tokens (flags override)."""
    if not argv:
        argv = ["train"]  # the main job
    elif argv[0].startswith("-") and argv[0] not in ("-h", "--help", "--version"):
        argv = ["train"] + argv  # `layerparallel --iterations 50` trains
    args = parser.parse_args(argv)
    if args.command is None:
        raise UsageError("a command is required: "
                         + ", ".join(m.__name__.rsplit(".", 1)[1] for m in COMMANDS))
    if getattr(args, "config", None):
        command = args.command
        tokens = config_tokens(args.config, parser.command_parsers[command], command)
        try:
            parser.parse_args([command] + tokens)
        except UsageError as exc:
            raise UsageError(f"{args.config}: {exc}") from None
        rest = argv[argv.index(command) + 1:]
        args = parser.parse_args([command] + tokens + rest)
    return args


def _error(message, status, rank):
    if rank == 0:
        print(f"layerparallel: error: {message}", file=sys.stderr, flush=True)
    return status


def _show_warning(message, category, filename, lineno, file=None, line=None):
    rank = env_rank()
    where = f" [rank {rank}]" if rank else ""
    text = " ".join(str(message).split())
    print(f"layerparallel: warning:{where} {text}", file=file or sys.stderr, flush=True)


def main(argv=None):
    """Run the command line; returns the exit status (0, 1 for a diverged
    solve, 2 for a user error, 130 when interrupted)."""
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    rank = env_rank()
    debug = bool(os.environ.get("LAYERPARALLEL_TRACEBACK"))
    try:
        parser = build_parser()
        args = parse(parser, argv)
        return args.func(args, rank_hint=rank)
    except UsageError as exc:
        return _error(str(exc), 2, env_rank())
    except ImportError as exc:  # an optional dependency (scikit-learn for digits, ...)
        if debug:
            raise
        return _error(str(exc).splitlines()[0], 2, env_rank())
    except ValueError as exc:  # the library's argument checks, CheckpointError
        if debug:
            raise
        msg = " ".join(str(exc).split()) or type(exc).__name__
        return _error(msg, 2, env_rank())
    except OSError as exc:  # files: rank-local, so every rank reports its own
        if debug:
            raise
        where = f" [rank {env_rank()}]" if env_rank() else ""
        name = f"{exc.filename}: " if exc.filename else ""
        print(f"layerparallel: error:{where} {name}{exc.strerror or exc}", file=sys.stderr,
              flush=True)
        return 2
    except MemoryError as exc:  # an allocation the memory estimate did not foresee
        if debug:
            raise
        return _error(f"out of memory: {exc}" if str(exc) else "out of memory", 2, env_rank())
    except KeyboardInterrupt:
        return _error("interrupted", 130, env_rank())
    except RuntimeError as exc:
        diverged = getattr(sys.modules.get("layerparallel._core"), "MGRITDiverged", None)
        if diverged is not None and isinstance(exc, diverged) and not debug:
            msg = " ".join(str(exc).split())
            return _error(f"MGRIT diverged: {msg} (try more --one-shot cycles, "
                          "--relax FCF or a smaller --lr)", 1, env_rank())
        raise
