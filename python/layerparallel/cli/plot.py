"""`layerparallel plot`: loss and accuracy of JSON-lines training logs
against iterations or wall time (needs matplotlib)."""

import os

from .errors import Formatter, UsageError


def add_parser(subparsers):
    pl = subparsers.add_parser("plot", help="plot JSON-lines training logs (needs matplotlib)",
                        description="Draw loss and accuracy of training logs against "
                                    "iterations or wall time.",
                        formatter_class=Formatter)
    pl.add_argument("logs", nargs="+", metavar="LOG.jsonl",
                    help="logs written by layerparallel train --log")
    pl.add_argument("-o", "--output", help="figure file (default: the first log's name "
                                           "with .png)")
    pl.add_argument("--x", default="iteration", choices=["iteration", "wall_time"],
                    help="the horizontal axis")
    pl.add_argument("--y", action="append", metavar="KEY",
                    help="a history key to plot (repeat or comma-separate; default: loss and "
                         "val_accuracy, or val_loss for regression)")
    pl.add_argument("--label", action="append", help="legend entry per log (default: names)")
    pl.add_argument("--title", help="figure title")
    pl.set_defaults(func=run)
    return pl


def run(args, rank_hint=0):
    from .. import plot as lpplot

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
    try:  # the logs are read (cheap); the figure needs matplotlib
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("plot needs matplotlib: pip install matplotlib "
                         "(or pip install 'layerparallel[plot]')") from None
    out = args.output or os.path.splitext(args.logs[0])[0] + ".png"
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise UsageError(f"cannot write {out}: no such directory")
    lpplot.plot_history(records, labels, x=args.x, out=out, y=keys, title=args.title)
    if rank_hint == 0:
        print(f"wrote {out}")
    return 0
