"""MGRIT over training steps: all 20 tables of the training-steps paper, ours beside its.

The paper (Schroder 2017, "Parallelizing over artificial neural network
training runs with multigrid") reports XBraid iteration counts and average
convergence factors rho for XOR (Tables 1-8) and binary addition (Tables
9-20). Here every table runs under the paper's conventions:

  MGRIT            c = 2, FCF, coarsest level <= 10 steps, tol 1e-9 sqrt(N),
                   at most 50 iterations, XBraid's skipped first down-cycle,
                   iterations counted as the paper's rho formula counts them
                   (k = residuals - 1, conventions="package"; --conventions
                   xbraid counts as XBraid's braid_Drive does, two more), the
                   level-local data index of solvers 2/3 (Remark 1), initial
                   guess w_i = 0 for i > 0 (the paper's), no divergence stop (a
                   run that does not converge reports 50 and its rho, as
                   Tables 9-12 do);
  XOR              3-4-1 sigmoid net of the appendix code (inputs [x1, x2, 1],
                   4 examples, summed loss, RandomState(1) weights 2 U - 1),
                   alpha_max = 8. The captions say alpha_base = 0.1 (0.05 in
                   Table 4) while the text takes 1.0 from the appendix code:
                   both readings run (the caption's and ten times it);
  binary addition  lp.steps.BinaryAddition(paper=True): the cited serial code's
                   500 pairs and initial weights, mini-batches of 10, summed
                   loss, one example per data unit of solvers 2/3;
                   alpha_max = 0.2.

Also Figs. 6-8 (potential speedup against N) under both speedup models, for
the paper's iteration counts and ours (--figures DIR).

    python bench/steps_tables.py --quick                  (a few minutes)
    python bench/steps_tables.py [--max-n-xor 25600] [--max-n-ba 12800]
        [--max-n-ba-batch 1280] [--tables 1,2,9] [--figures bench/figures]
    mpiexec -n 2 python -m mpi4py bench/steps_tables.py --timing-only --quick
    python bench/steps_tables.py --tables 7,8 --grid      (every plausible convention)
    python bench/steps_tables.py --tables 5,6 --index-point end   (a step's data from its
                                                  end point: the paper's block rows)
    python bench/steps_tables.py --tables 14-19 --ba-pairs 1000   (the cited code's size)
    python bench/steps_tables.py --rows A.jsonl B.jsonl --tables 1-8 [--figures DIR]

Rows: JSON on stdout (bench "steps_tables", "steps_time"); the side-by-side
Markdown tables on stderr.
"""

import argparse
import os
import time

import numpy as np

from _common import emit, log, median_time

import layerparallel as lp

try:
    from mpi4py import MPI
    COMM = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
except ImportError:
    COMM = None
RANK = COMM.Get_rank() if COMM is not None else 0
NRANKS = COMM.Get_size() if COMM is not None else 1

XOR_N = [100 * 2 ** k for k in range(9)]     # 100 .. 25600
BA_N = [100 * 2 ** k for k in range(8)]      # 100 .. 12800
BA_BATCH_N = [40 * 2 ** k for k in range(6)]  # 40 .. 1280


def _t(problem, solver, cycle, alpha, Ns, its, rho, caption, **extra):
    return dict(problem=problem, solver=solver, cycle=cycle, alpha=alpha, N=Ns,
                iterations=its, rho=rho, caption=caption, **extra)


# The paper's tables, copied exactly ("50+" and "*" as printed; None: not converged).
TABLES = {
    1: _t("xor", "naive", "two", 0.1, XOR_N, ["14", "19", "24", "31", "40", "49", "50+", "50+", "50+"],
          ["0.31", "0.43", "0.48", "0.59", "0.66", "0.72", "*", "*", "*"],
          "Three-layer model problem, Naive solver, Two-level results, alpha_b = 0.1"),
    2: _t("xor", "solver1", "two", 0.1, XOR_N, ["6"] * 8 + ["5"],
          ["0.10", "0.10", "0.10", "0.10", "0.09", "0.09", "0.08", "0.08", "0.07"],
          "Three-layer model problem, Solver 1, Two-level results, alpha_b = 0.1"),
    3: _t("xor", "solver1", "F", 0.1, XOR_N, ["6", "6", "7", "7", "7", "8", "11", "16", "21"],
          ["0.10", "0.10", "0.09", "0.10", "0.09", "0.07", "0.17", "0.24", "0.34"],
          "Three-layer model problem, Solver 1, F-cycle results, alpha_b = 0.1"),
    4: _t("xor", "solver1", "F", 0.05, XOR_N, ["5", "5", "5", "6", "6", "5", "6", "9", "12"],
          ["0.07", "0.08", "0.08", "0.06", "0.05", "0.04", "0.05", "0.07", "0.18"],
          "Three-layer model problem, Solver 1, F-cycle results, alpha_b = 0.05"),
    5: _t("xor", "solver2", "two", 0.1, XOR_N, ["10", "12", "15", "18", "20", "20", "20", "20", "19"],
          ["0.18", "0.23", "0.28", "0.36", "0.40", "0.39", "0.39", "0.38", "0.38"],
          "Three-layer model problem, Solver 2, two-level results, alpha_b = 0.1"),
    6: _t("xor", "solver2", "F", 0.1, XOR_N, ["10", "12", "15", "21", "26", "27", "29", "41", "50"],
          ["0.18", "0.23", "0.29", "0.40", "0.47", "0.47", "0.50", "0.60", "0.99"],
          "Three-layer model problem, Solver 2, F-cycle results, alpha_b = 0.1"),
    7: _t("xor", "solver3", "two", 0.1, XOR_N, ["10", "10", "11", "11", "10", "10", "10", "10", "10"],
          ["0.15", "0.17", "0.19", "0.18", "0.16", "0.16", "0.15", "0.14", "0.14"],
          "Three-layer model problem, Solver 3, two-level results, alpha_b = 0.1"),
    8: _t("xor", "solver3", "F", 0.1, XOR_N, ["10", "10", "11", "11", "11", "11", "12", "14", "15"],
          ["0.14", "0.17", "0.19", "0.18", "0.17", "0.18", "0.21", "0.24", "0.29"],
          "Three-layer model problem, Solver 3, F-cycle results, alpha_b = 0.1"),
    9: _t("ba", "naive", "two", 0.1, BA_BATCH_N, ["9", "13", "19", "36", "48", "50"],
          ["0.14", "0.27", "0.38", "0.63", "0.69", "0.88"],
          "Four-layer model problem, Naive solver, Two-level results, alpha_b = 0.1"),
    10: _t("ba", "solver1", "two", 0.1, BA_BATCH_N, ["9", "50", "50", "50", "50", "50"],
           ["0.13", "1.01", "1.02", "1.02", "1.02", "1.02"],
           "Four-layer model problem, Solver 1, Two-level results, alpha_b = 0.1"),
    11: _t("ba", "naive", "two", 0.025, BA_BATCH_N, ["8", "12", "17", "23", "31", "43"],
           ["0.11", "0.24", "0.37", "0.49", "0.61", "0.70"],
           "Four-layer model problem, Naive Solver, Two-level results, alpha_b = 0.025"),
    12: _t("ba", "solver1", "two", 0.025, BA_BATCH_N, ["5", "7", "11", "16", "25", "37"],
           ["0.06", "0.12", "0.23", "0.36", "0.53", "0.63"],
           "Four-layer model problem, Solver 1, Two-level results, alpha_b = 0.025"),
    13: _t("ba", "solver1", "two", 0.025, BA_N, ["4", "5", "7", "11", "14", "13", "14", "14"],
           ["0.04", "0.07", "0.15", "0.27", "0.35", "0.37", "0.39", "0.39"],
           "Four-layer model problem, Solver 1, Two-level results, 50 training examples, "
           "alpha_b = 0.025", examples=50),
    14: _t("ba", "solver2", "two", 0.025, BA_N, ["4", "4", "5", "5", "6", "6", "7", "11"],
           ["0.05", "0.07", "0.07", "0.09", "0.10", "0.13", "0.18", "0.29"],
           "Four-layer model problem, Solver 2, Two-level results, alpha_b = 0.025"),
    15: _t("ba", "solver2", "F", 0.025, BA_N, ["4", "4", "5", "5", "6", "6", "8", "13"],
           ["0.05", "0.07", "0.07", "0.09", "0.10", "0.13", "0.17", "0.34"],
           "Four-layer model problem, Solver 2, F-cycle results, alpha_b = 0.025"),
    16: _t("ba", "solver2", "V", 0.025, BA_N, ["4", "5", "6", "7", "8", "9", "11", "22"],
           ["0.05", "0.08", "0.10", "0.13", "0.17", "0.20", "0.28", "0.51"],
           "Four-layer model problem, Solver 2, V-cycle results, alpha_b = 0.025"),
    # Caption says F-cycle; the text calls Table 17 the two-level results.
    17: _t("ba", "solver3", "two", 0.025, BA_N, ["4", "4", "6", "6", "6", "6", "6", "6"],
           ["0.04", "0.06", "0.07", "0.08", "0.10", "0.10", "0.10", "0.09"],
           "Four-layer model problem, Solver 3, F-cycle results, alpha_b = 0.025"),
    18: _t("ba", "solver3", "F", 0.025, BA_N, ["4", "4", "6", "6", "6", "6", "6", "6"],
           ["0.04", "0.06", "0.07", "0.08", "0.10", "0.10", "0.10", "0.09"],
           "Four-layer model problem, Solver 3, F-cycle results, alpha_b = 0.025"),
    19: _t("ba", "solver3", "V", 0.025, BA_N, ["4", "6", "8", "11", "13", "14", "16", "19"],
           ["0.05", "0.07", "0.15", "0.22", "0.30", "0.33", "0.36", "0.42"],
           "Four-layer model problem, Solver 3, V-cycle results, alpha_b = 0.025"),
    20: _t("ba", "solver3", "F", 0.1, BA_N, ["7", "8", "9", "9", "9", "9", "9", "9"],
           ["0.15", "0.17", "0.20", "0.20", "0.20", "0.20", "0.21", "0.22"],
           "Four-layer model problem, Solver 3, F-cycle results, alpha_b = 0.1"),
}
# Figs. 6-8: the tables whose potential speedup each figure draws.
FIGURES = {6: [3, 4, 8], 7: [16, 15], 8: [19, 18]}
_PROBLEMS = {}


BA_PAIRS = {"n": 500}  # --ba-pairs: pairs the cited code draws (the paper: 500; the code: 1000)


def make(name, examples=None):
    key = (name, examples)
    if key not in _PROBLEMS:
        _PROBLEMS[key] = (lp.steps.XOR() if name == "xor" else
                          lp.steps.BinaryAddition(paper=True, examples=examples, **BA_PAIRS))
    return _PROBLEMS[key]


ALPHA_MAX = {}  # --alpha-max: a different cap of the coarse learning rates (all tables)


INDEX_POINT = {}  # --index-point end: solvers 2/3 index their data by a step's end point


def run_one(spec, N, alpha, init="zero", conventions="package", mapping="local", skip=True):
    """One paper-convention solve; a dict of iterations, rho, speedups, error, seconds."""
    problem = make(spec["problem"], spec.get("examples"))
    w0 = problem.initial_weights()
    guess = np.zeros_like(w0) if init == "zero" else None
    t0 = time.perf_counter()
    try:
        res = lp.steps.solve(problem, w0, N, cycle=spec["cycle"], solver=spec["solver"],
                             alpha_base=alpha, mapping=mapping, comm=COMM, **ALPHA_MAX,
                             **INDEX_POINT,
                             conventions=conventions, init_guess=guess, divergence=1e300,
                             skip_first_down=skip)
    except lp.MGRITDiverged:
        return dict(N=N, iterations=None, converged=False, rho=None,
                    seconds=round(time.perf_counter() - t0, 2))
    t = time.perf_counter() - t0
    err = None
    if spec["problem"] == "xor" or N <= 400:  # the serial reference costs one more training
        err = float(np.abs(res.weights - problem.serial(N, w0=w0, solver=spec["solver"],
                                                        alpha_base=alpha, **ALPHA_MAX,
                                                        **INDEX_POINT)).max())
    return dict(N=N, iterations=res.iterations, converged=res.converged,
                rho=round(res.rho, 4), levels=res.levels, error=err,
                speedup_critical_path=round(res.potential_speedup, 4),
                speedup_paper=None if res.paper_speedup is None else round(res.paper_speedup, 4),
                seconds=round(t, 2))


def alphas(spec, text_alpha):
    """The alpha_base readings of a table: the caption's, and for XOR ten times it."""
    out = [spec["alpha"]]
    if spec["problem"] == "xor" and text_alpha:
        out.append(round(10 * spec["alpha"], 6))
    return out


def run_table(num, max_n, text_alpha=True, variants=(), conventions="package"):
    spec = TABLES[num]
    Ns = [n for n in spec["N"] if n <= max_n]
    results = {}
    for alpha in alphas(spec, text_alpha):
        main = [] if any("skip" in kw for _, kw in variants) else \
            [("", dict(conventions=conventions))]
        for label, kw in main + list(variants):
            key = f"alpha={alpha}" + (f", {label}" if label else "") + (
                f", alpha_max {ALPHA_MAX['alpha_max']}" if ALPHA_MAX else "") + (
                ", end index" if INDEX_POINT and spec["solver"] in ("solver2", "solver3")
                else "") + (
                f", {BA_PAIRS['n']} pairs" if spec["problem"] == "ba" and BA_PAIRS["n"] != 500
                else "")
            rows = []
            for N in Ns:
                r = run_one(spec, N, alpha, **kw)
                i = spec["N"].index(N)
                r.update(bench="steps_tables", table=num, variant=key,
                         mapping=kw.get("mapping", "local"),
                         index_point=INDEX_POINT.get("index_point", "start"),
                         skip_first_down=kw.get("skip", True),
                         conventions=kw.get("conventions", conventions), problem=spec["problem"],
                         solver=spec["solver"], cycle=spec["cycle"], nranks=NRANKS,
                         paper_iterations=spec["iterations"][i], paper_rho=spec["rho"][i])
                if RANK == 0:
                    emit(**r)
                rows.append(r)
            results[key] = rows
    if RANK == 0:
        log(markdown(num, spec, Ns, results))
    return results


def _its(r):
    if r["iterations"] is None:
        return "div"
    return str(r["iterations"]) + ("" if r["converged"] else "+")


def _rho(r):
    return "-" if r["rho"] is None else f"{r['rho']:.2f}"


# The rows of every table, in one loop: (quantity, the paper's cells, our cell).
QUANTITIES = (("iters", "iterations", _its), ("rho", "rho", _rho))


def markdown(num, spec, Ns, results):
    """Table `num` side by side: the paper's row, then ours per variant, per quantity.
    `results`: variant -> rows (any subset of Ns; a missing N is left empty)."""
    lines = [f"\nTable {num}: {spec['caption']} ({spec['cycle']}, {spec['solver']})", "",
             "| | " + " | ".join(str(n) for n in Ns) + " |",
             "|---|" + "---|" * len(Ns)]
    for name, key, cell in QUANTITIES:
        paper = dict(zip(spec["N"], spec[key]))
        lines.append(f"| paper {name} | " + " | ".join(paper[n] for n in Ns) + " |")
        for variant, rows in results.items():
            by_n = {r["N"]: cell(r) for r in rows}
            lines.append(f"| ours {name} ({variant}) | " +
                         " | ".join(by_n.get(n, "") for n in Ns) + " |")
    return "\n".join(lines)


def read_rows(paths):
    """Saved rows of several runs: table -> variant (with its count) -> rows by N."""
    import json
    results = {}
    for path in paths:
        for line in open(path):
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            if r.get("bench") == "steps_tables":
                alpha = r["variant"].split(",")[0].split("=")[1]
                amax = r["variant"].partition("alpha_max ")[2]
                variant = f"{r['conventions']}, alpha {alpha}" + (
                    f", alpha_max {amax}" if amax else "") + (
                    ", injected index" if "injected" in r["variant"] else "") + (
                    ", no skip" if r.get("skip_first_down") is False else "") + (
                    ", end index" if "end index" in r["variant"] else "") + (
                    "".join(", " + part for part in r["variant"].split(", ")
                            if part.endswith(" pairs")))
                results.setdefault(r["table"], {}).setdefault(variant, {})[r["N"]] = r
    return {num: {v: [rows[n] for n in sorted(rows)] for v, rows in sorted(vs.items())}
            for num, vs in results.items()}


def paper_iterations(spec):
    """(N, iterations) of the paper's table where it converged."""
    return [(n, int(i)) for n, i in zip(spec["N"], spec["iterations"]) if i.isdigit()]


def closest(spec, variants):
    """The variant (alpha reading) whose iterations are nearest the paper's."""
    paper = dict(paper_iterations(spec))

    def distance(rows):
        d = [abs(r["iterations"] - paper[r["N"]]) for r in rows
             if r["iterations"] is not None and r["N"] in paper]
        return sum(d) / len(d) if d else float("inf")

    if not variants:
        return "", []
    key = min(variants, key=lambda k: distance(variants[k]))
    return key, variants[key]


def figures(results, outdir):
    """Figs. 6-8: potential speedup against N, the paper's counts and ours, both models."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(f"--figures needs matplotlib ({exc})")
    os.makedirs(outdir, exist_ok=True)
    paths = []
    for fig, nums in FIGURES.items():
        if not any(results.get(num) for num in nums):
            continue  # no rows of ours for this figure: leave its PNG as it is
        f, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
        for ax, model in zip(axes, ("paper", "critical_path")):
            for k, num in enumerate(nums):
                spec = TABLES[num]
                color = f"C{k}"
                kw = dict(cfactor=2, cycle=spec["cycle"], min_coarse=10)
                pn, pi = zip(*paper_iterations(spec))
                ax.loglog(pn, [lp.steps.potential_speedup(n, i, model=model, **kw)
                               for n, i in zip(pn, pi)], "o-", color=color,
                          label=f"Table {num} ({spec['cycle']}), paper")
                key, rows = closest(spec, results.get(num, {}))
                rows = [r for r in rows if r["iterations"] is not None]
                if rows:
                    ax.loglog([r["N"] for r in rows],
                              [lp.steps.potential_speedup(r["N"], r["iterations"], model=model,
                                                          **kw) for r in rows],
                              "s--", color=color, label=f"Table {num}, ours ({key})")
            ax.set_title(f"Fig. {fig}: model '{model}'")
            ax.set_xlabel("training steps N")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
        axes[0].set_ylabel("potential speedup")
        f.tight_layout()
        path = os.path.join(outdir, f"steps_fig{fig}_speedup.png")
        f.savefig(path, dpi=110)
        plt.close(f)
        paths.append(path)
    return paths


def timing(name, solver, cycle, N, min_seconds):
    """A converged solve against serial training, on this run's ranks."""
    problem = lp.steps.XOR() if name == "xor" else lp.steps.BinaryAddition(paper=True)
    w0 = problem.initial_weights()

    def mgrit():
        if COMM is not None:
            COMM.Barrier()
        return lp.steps.solve(problem, w0, N, cycle=cycle, solver=solver, comm=COMM)

    res = mgrit()
    t_mgrit, reps = median_time(mgrit, min_seconds=min_seconds, warmup=1)
    t_serial, _ = median_time(lambda: problem.serial(N, w0=w0, solver=solver),
                              min_seconds=min_seconds, warmup=1)
    if COMM is not None:
        t_mgrit = COMM.allreduce(t_mgrit, op=MPI.MAX)
    row = dict(bench="steps_time", problem=name, solver=solver, cycle=cycle, N=N,
               nranks=NRANKS, threads=lp.get_num_threads(), reps=reps,
               iterations=res.iterations, mgrit_s=round(t_mgrit, 5),
               serial_s=round(t_serial, 5), ratio=round(t_mgrit / t_serial, 2),
               potential_speedup=round(res.potential_speedup, 4),
               critical_path=res.critical_path, steps_this_rank=res.steps,
               steps_per_serial=round(res.steps / N, 2))
    if RANK == 0:
        emit(**row)
        log(f"{name} {solver} {cycle} N={N} ranks={NRANKS}: MGRIT {t_mgrit:.3f} s "
            f"({res.iterations} it, {res.steps} Phi applications on rank 0) vs serial "
            f"{t_serial:.4f} s: ratio {t_mgrit / t_serial:.1f}; potential speedup "
            f"{res.potential_speedup:.2f}")
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="N <= 400 (XOR, binary addition solvers 2/3) and <= 80 (batch)")
    ap.add_argument("--tables", default="1-20", help="e.g. 1-8 or 2,3,18")
    ap.add_argument("--max-n-xor", type=int, default=25600)
    ap.add_argument("--max-n-ba", type=int, default=12800,
                    help="binary addition, solvers 2/3 and Table 13")
    ap.add_argument("--max-n-ba-batch", type=int, default=1280,
                    help="binary addition, Tables 9-12 (a step is a pass over 500 examples)")
    ap.add_argument("--no-text-alpha", action="store_true",
                    help="XOR: the captions' alpha only")
    ap.add_argument("--conventions", default="package", choices=["package", "xbraid"],
                    help="iteration counting (package: the paper's k = residuals - 1)")
    ap.add_argument("--variants", action="store_true",
                    help="also the other conventions and the injected data index")
    ap.add_argument("--grid", action="store_true",
                    help="only the grid of conventions: data index x count x skipped start")
    ap.add_argument("--alpha-max", type=float, default=None,
                    help="cap of the coarse learning rates instead of the paper's (8 XOR, "
                         "0.2 binary addition)")
    ap.add_argument("--index-point", default="start", choices=["start", "end"],
                    help="the point of a step whose index selects the data of solvers 2/3 "
                         "(end: the step's block row in the global system)")
    ap.add_argument("--ba-pairs", type=int, default=500,
                    help="binary addition: pairs drawn by the cited code (the paper's 500; "
                         "the code's own default is 1000)")
    ap.add_argument("--figures", metavar="DIR", help="write Figs. 6-8 as PNGs to DIR")
    ap.add_argument("--rows", nargs="+", metavar="JSONL",
                    help="print the tables (of --tables) and draw --figures from these saved "
                         "rows instead of running")
    ap.add_argument("--timing-only", action="store_true")
    ap.add_argument("--timing", action="store_true", help="also MGRIT vs serial wall time")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads is not None:
        lp.set_num_threads(args.threads)
    if args.alpha_max is not None:
        ALPHA_MAX["alpha_max"] = args.alpha_max
    BA_PAIRS["n"] = args.ba_pairs
    if args.index_point != "start":
        INDEX_POINT["index_point"] = args.index_point
    nums = []
    for part in args.tables.split(","):
        a, _, b = part.partition("-")
        nums += list(range(int(a), int(b or a) + 1))
    if args.quick:
        args.max_n_xor = min(args.max_n_xor, 400)
        args.max_n_ba = min(args.max_n_ba, 400)
        args.max_n_ba_batch = min(args.max_n_ba_batch, 80)
    other = "xbraid" if args.conventions == "package" else "package"
    variants = [(f"{other} conventions", dict(conventions=other)),
                ("injected index", dict(mapping="injected", conventions=args.conventions)),
                (f"injected index, {other} conventions",
                 dict(mapping="injected", conventions=other))] if args.variants else []
    if args.grid:  # every combination of the plausible conventions
        variants = [(f"{m} index, {c} count, {'skipped start' if k else 'no skip'}",
                     dict(mapping=m, conventions=c, skip=k))
                    for m in ("local", "injected") for k in (True, False)
                    for c in ("package", "xbraid")]
    results = {}
    if args.rows:
        results = read_rows(args.rows)
        for num in sorted(results):
            if num in nums:
                Ns = sorted({r["N"] for rows in results[num].values() for r in rows})
                log(markdown(num, TABLES[num], Ns, results[num]))
        if args.figures:
            for path in figures(results, args.figures):
                log(f"wrote {path}")
        return
    if not args.timing_only:
        for num in nums:
            spec = TABLES[num]
            max_n = (args.max_n_xor if spec["problem"] == "xor" else
                     args.max_n_ba_batch if num <= 12 else args.max_n_ba)
            vs = [v for v in variants if spec["solver"] in ("solver2", "solver3")
                  or "injected" not in v[0]]
            results[num] = run_table(num, max_n, not args.no_text_alpha, vs, args.conventions)
        if args.figures and RANK == 0:
            for path in figures(results, args.figures):
                log(f"wrote {path}")
    if args.timing or args.timing_only:
        min_s = 0.2 if args.quick else 1.0
        timing("xor", "solver1", "F", 1600 if args.quick else 6400, min_s)
        timing("binary_addition", "solver3", "F", 200 if args.quick else 800, min_s)


if __name__ == "__main__":
    main()
