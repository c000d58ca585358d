"""`layerparallel steps`: MGRIT over training steps from the command line.

    layerparallel steps --problem xor --solver solver3 --cycle F --steps 100,200,400
    layerparallel steps --problem binary_addition --cycle V --steps 100,200 --plot fig.png
    mpiexec -n 4 layerparallel steps ...      (the steps are shared by the ranks)

For every N it solves serial training with MGRIT (lp.steps.solve), trains
serially for the reference, and prints N, iterations, rho, |w_N - serial|
(max norm), the potential speedup and the wall times; ``--json`` prints one
JSON row per N instead, ``--plot`` draws potential speedup against N
(needs matplotlib).

"""

import argparse
import json
import time

from .argtypes import int_list, nonnegative_float, nonnegative_int, positive_float, positive_int
from .errors import Formatter, UsageError
from .ranks import world

PROBLEM_NAMES = ("xor", "binary_addition")


def add_parser(subparsers):
    """Add the `steps` subcommand to an argparse subparsers object."""
    from ..mgrit import CONVENTIONS
    from ..steps import CYCLES, INDEX_POINTS, MAPPINGS, SOLVERS

    s = subparsers.add_parser(
        "steps", help="MGRIT over training steps (parallel across optimizer steps)",
        description="Solve serial training w_{i+1} = Phi_i(w_i) of a built-in problem with "
                    "MGRIT across the training steps and compare with serial training. "
                    "Under mpiexec -n K the K ranks share the steps.",
        formatter_class=Formatter)
    s.add_argument("--problem", default="xor", choices=PROBLEM_NAMES,
                   help="xor: 3-4-1 sigmoid net on XOR; binary_addition: 24-128-64-12 net on "
                        "500 pairs of 12-bit numbers")
    s.add_argument("--solver", default="solver1", choices=SOLVERS,
                   help="preset: learning rate per level and data per step")
    s.add_argument("--cycle", default="F", choices=CYCLES, help="two-level, V- or F-cycles")
    s.add_argument("--steps", type=int_list, default=[100, 200, 400, 800, 1600],
                   metavar="N1,N2,...",
                   help="numbers of training steps N (default: 100,200,400,800,1600)")
    s.add_argument("--cfactor", type=positive_int, default=2,
                   help="coarsening factor across the steps")
    s.add_argument("--relax", default="FCF", help="relaxation: F, FCF, FCFCF, ...")
    s.add_argument("--tol", type=nonnegative_float, default=None,
                   help="halting tolerance on the residual (default: 1e-9 sqrt(N); "
                        "0: exactly --max-iter cycles)")
    s.add_argument("--max-iter", type=positive_int, default=50, help="MGRIT cycles at most")
    s.add_argument("--min-coarse", type=positive_int, default=10,
                   help="stop coarsening at a level with at most this many intervals")
    s.add_argument("--alpha-base", type=positive_float, default=None,
                   help="learning rate on level 0 (default: the problem's; xor 1.0, "
                        "binary_addition 0.025)")
    s.add_argument("--alpha-max", type=positive_float, default=None,
                   help="cap of the coarse learning rates (default: the problem's; xor 8, "
                        "binary_addition 0.2)")
    s.add_argument("--mapping", default="local", choices=MAPPINGS,
                   help="coarse-level step index of solver2/solver3's data (local: the paper's)")
    s.add_argument("--index-point", default="start", choices=INDEX_POINTS,
                   help="the point of a step whose index selects solver2/solver3's data "
                        "(start: w_i -> w_{i+1} trains on i mod K; end: on i+1 mod K)")
    s.add_argument("--conventions", default="package", choices=CONVENTIONS,
                   help="start cycle and iteration counting: the package's (residuals - 1, "
                        "as the paper's tables count) or XBraid's")
    s.add_argument("--paper-data", action="store_true",
                   help="binary_addition: the paper's data, initial weights, data unit and "
                        "summed loss (BinaryAddition(paper=True))")
    s.add_argument("--skip-first-down", default=True, action=argparse.BooleanOptionalAction,
                   help="XBraid's start: the first cycle skips level 0's relaxation")
    s.add_argument("--seed", type=nonnegative_int, default=1, help="seed of the initial weights")
    s.add_argument("--json", action="store_true", help="one JSON row per N instead of a table")
    s.add_argument("--plot", metavar="FIG.png",
                   help="draw potential speedup against N (needs matplotlib)")
    s.set_defaults(func=run)
    return s


def rows(args, comm=None):
    """Solve for every N of args.steps; yields one dict per N (on every rank)."""
    import numpy as np

    import layerparallel as lp

    if getattr(args, "paper_data", False):
        if args.problem != "binary_addition":
            raise ValueError("--paper-data applies to --problem binary_addition")
        problem = lp.steps.BinaryAddition(seed=args.seed, paper=True)
    else:
        problem = lp.steps.PROBLEMS[args.problem](seed=args.seed)
    for N in args.steps:
        if comm is not None:
            comm.Barrier()
        t0 = time.perf_counter()
        res = lp.steps.solve(problem, None, N, cfactor=args.cfactor, cycle=args.cycle,
                             tol=args.tol, max_iter=args.max_iter, solver=args.solver,
                             alpha_base=args.alpha_base, alpha_max=args.alpha_max,
                             mapping=args.mapping, comm=comm,
                             skip_first_down=args.skip_first_down, relax=args.relax,
                             min_coarse=args.min_coarse, conventions=args.conventions,
                             index_point=args.index_point)
        t_mgrit = time.perf_counter() - t0
        t0 = time.perf_counter()
        ref = problem.serial(N, solver=args.solver, alpha_base=args.alpha_base,
                             alpha_max=args.alpha_max, index_point=args.index_point)
        t_serial = time.perf_counter() - t0
        yield dict(problem=args.problem, solver=args.solver, cycle=args.cycle, N=N,
                   iterations=res.iterations, converged=res.converged, rho=res.rho,
                   error=float(np.abs(res.weights - ref).max()),
                   potential_speedup=res.potential_speedup, paper_speedup=res.paper_speedup,
                   critical_path=res.critical_path, conventions=args.conventions,
                   levels=res.levels, mgrit_s=t_mgrit, serial_s=t_serial,
                   ranks=res.settings["ranks"], mapping=res.settings["mapping"],
                   index_point=args.index_point)


def plot(table, path, title=None):
    """Potential speedup against N (log-log), iterations annotated."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("--plot needs matplotlib (pip install 'layerparallel[plot]')") from None
    fig, ax = plt.subplots(figsize=(6, 4))
    Ns = [r["N"] for r in table]
    sp = [r["potential_speedup"] for r in table]
    ax.plot(Ns, sp, "o-")
    for r in table:
        ax.annotate(str(r["iterations"]), (r["N"], r["potential_speedup"]),
                    textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(Ns)
    ax.set_xticklabels([str(n) for n in Ns], fontsize=8)
    ax.minorticks_off()
    ax.set_yscale("log")
    ax.set_xlabel("training steps N")
    ax.set_ylabel("potential speedup N / (iterations x critical path)")
    ax.axhline(1.0, color="gray", lw=0.8, ls="--")
    ax.set_title(title or "MGRIT over training steps (labels: iterations)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(args, rank_hint=None):
    """The `steps` subcommand; returns the exit status."""
    comm, rank, _ = world()
    if args.plot:  # before any work
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise UsageError("--plot needs matplotlib: pip install matplotlib "
                             "(or pip install 'layerparallel[plot]')") from None
        import os

        if not os.path.isdir(os.path.dirname(os.path.abspath(args.plot))):
            raise UsageError(f"cannot write {args.plot}: no such directory")
    table = []
    if rank == 0 and not args.json:
        print(f"{args.problem}, {args.solver}, cycle {args.cycle}, cfactor {args.cfactor}, "
              f"relax {args.relax}, mapping {args.mapping}, index point {args.index_point}, "
              f"ranks {1 if comm is None else comm.Get_size()}", flush=True)
        print(f"{'N':>7} {'iter':>5} {'rho':>7} {'|w_N - serial|':>15} {'speedup':>8} "
              f"{'mgrit [s]':>10} {'serial [s]':>11}", flush=True)
    for row in rows(args, comm):
        table.append(row)
        if rank != 0:
            continue
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            it = f"{row['iterations']}" + ("" if row["converged"] else "*")
            print(f"{row['N']:>7} {it:>5} {row['rho']:>7.3f} {row['error']:>15.2e} "
                  f"{row['potential_speedup']:>8.3f} {row['mgrit_s']:>10.3g} "
                  f"{row['serial_s']:>11.3g}", flush=True)
    if rank == 0 and not args.json and not all(r["converged"] for r in table):
        print("* not converged within --max-iter", flush=True)
    if args.plot and rank == 0:
        plot(table, args.plot, f"{args.problem} {args.solver}, {args.cycle}-cycle")
        if not args.json:
            print(f"wrote {args.plot}", flush=True)
    return 0
