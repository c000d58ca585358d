"""The nested-iteration paper's robustness study on peaks (its Fig. 3 and Fig. 4), with our numbers.

Peaks, widths 5 and 8, 64 residual layers, T = 5, 5000 training points (the
paper's s = 5000) and 1000 validation points, smoothed ReLU, L-BFGS.
Hyperparameters: initial weight magnitude {0, 1e-6} of the residual layers
(opening layer and classifier Glorot) x Tikhonov {1e-5, 1e-7}, ``--seeds``
seeds each (12 in the paper: 48 runs per width and method).

Protocol (the paper's, the default): layer-parallel one-shot training, every
gradient from d = 2 warm-started MGRIT cycles (c = 4, FCF); nested iteration
with three levels (16, 32, 64 layers), schedule 200/125/75 and constant
interpolation, d = 10 for the first 3 optimizer iterations after each
refinement; non-nested: the 64-layer net for 188 iterations (the paper's
count). The work unit is the paper's: the mean wall time of one non-nested
iteration (of the same hyperparameters and seed).

Second table (``--equal-time``, on by default): the non-nested run given the
nested run's wall time (its work units, rounded), read from the same
non-nested run continued as needed (validation every ``--validate-every``
iterations: the accuracy at the last validation not after that budget).

``--exact`` trains with exact (serial) gradients instead of one-shot MGRIT.
Prints one JSON row per run and the summary tables (mean, median, max, min,
std of the validation accuracy); ``--png`` draws Fig. 4 (validation accuracy
against work units, the best run of each method, nested levels in colours).

    python bench/nested_study.py --quick                     # a few minutes
    python bench/nested_study.py --png bench/figures/nested_fig4.png   # 48 runs each
    python bench/nested_study.py --seeds 2 --widths 5 8      # 8 runs each
    python bench/nested_study.py --first-seed 1 --seeds 6 --skip rows.jsonl > more.jsonl  # continue
"""

import argparse
import itertools
import time

import numpy as np

from _common import emit, log

import layerparallel as lp

PAPER = {  # Fig. 3, copied exactly: mean, median, max, min, std. dev.
    (5, "nested"): ("86.7%", "88.0%", "97.0%", "66.0%", "7.69%"),
    (5, "non_nested"): ("85.0%", "88.5%", "95.0%", "20.0%", "11.7%"),
    (8, "nested"): ("92.3%", "94.0%", "99.0 %", "72.5 %", "5.18 %"),
    (8, "non_nested"): ("90.7%", "91.8%", "96.5%", "57.0%", "6.08 %"),
}


def data(args, seed):
    X, Y = lp.datasets.peaks(n=args.samples + args.validation, seed=seed)
    return lp.datasets.train_validation_split(
        X, Y, args.validation / (args.samples + args.validation), seed=seed)


def solver_kwargs(args, cycles):
    if args.exact:
        return {}
    return dict(solver=lp.MGRIT(cfactor=args.cfactor), one_shot=cycles)


def run_nested(width, magnitude, gamma, seed, args):
    """The nested run's records and whether MGRIT diverged (then the records up to it)."""
    X, Y, Xv, Yv = data(args, seed)
    net = lp.ODEResNet(2, width, 64, 5, T=5.0, activation="smoothrelu", gamma_tik=gamma)
    kw = solver_kwargs(args, args.d)
    if not args.exact:
        kw.update(refine_cycles=args.d_refine, refine_steps=args.refine_steps)
    seen = []
    try:
        _, _, h = lp.nested_train(net, X, Y, lp.optim.LBFGS(memory=5), levels=3,
                                  schedule=args.schedule, interp="constant",
                                  magnitude=magnitude, seed=seed, validation=(Xv, Yv),
                                  validate_every=args.validate_every,
                                  callback=lambda it, rec: seen.append(dict(rec)), **kw)
    except lp.MGRITDiverged:  # a one-shot gradient at a wild line-search trial
        return seen, True
    return h.records(), False


def run_non_nested(width, magnitude, gamma, seed, args, iterations, budget_s=None):
    """The fine net for `iterations`; with budget_s continued until its wall time
    reaches budget_s. Returns the records (one optimizer kept throughout) and whether
    MGRIT diverged (then the records up to it)."""
    X, Y, Xv, Yv = data(args, seed)
    net = lp.ODEResNet(2, width, 64, 5, T=5.0, activation="smoothrelu", gamma_tik=gamma)
    theta = net.init("uniform", seed=seed, magnitude=magnitude, outer="glorot")
    opt = lp.optim.LBFGS(memory=5)
    records = []

    def keep(it, rec, offset=0, t_off=0.0):
        records.append(dict(rec, iteration=it + offset, wall_time=rec["wall_time"] + t_off))

    kw = dict(validation=(Xv, Yv), validate_every=args.validate_every,
              **solver_kwargs(args, args.d))
    try:
        lp.train(net, theta, X, Y, opt, iterations=iterations, callback=keep, **kw)
        while budget_s is not None and records[-1]["wall_time"] < budget_s:
            offset, t_off = len(records), records[-1]["wall_time"]
            lp.train(net, theta, X, Y, opt, iterations=args.validate_every,
                     callback=lambda it, rec: keep(it, rec, offset, t_off), **kw)
    except lp.MGRITDiverged:
        return records, True
    return records, False


def accuracy_at(records, iterations):
    """The last validation accuracy at or before `iterations`."""
    acc = [r.get("val_accuracy") for r in records[:iterations]
           if r.get("val_accuracy") is not None]
    return acc[-1] if acc else None


def curve(records):
    """(work units, validation accuracy, level) at each validation: Fig. 4's points."""
    return [(round(r["work_units"], 3), r["val_accuracy"], r.get("level") or 0)
            for r in records if r.get("val_accuracy") is not None]


def study_rows(paths):
    """The per-run rows (this script's JSON lines) in the files `paths`."""
    import json
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    row = json.loads(line)
                    if row.get("bench") == "nested_study":
                        yield row


def read_rows(path, seeds):
    """The per-run rows of an earlier (possibly unfinished) study, as results: the
    runs of the first `seeds` seeds."""
    results = {}
    for row in study_rows([path]):
        if row["seed"] < seeds:
            results.setdefault((row["width"], row["method"]), []).append(
                (row["val_accuracy"], row["curve"], row.get("diverged", False)))
    return results


def done_runs(paths):
    """The (seed, width, magnitude, gamma) whose nested and non-nested rows are all in
    `paths`: those a continued study skips."""
    methods = {}
    for row in study_rows(paths):
        key = (row["seed"], row["width"], row["magnitude"], row["gamma_tik"])
        methods.setdefault(key, set()).add(row["method"])
    return {k for k, m in methods.items() if {"nested", "non_nested"} <= m}


def summary(values):
    v = np.array(values)
    return dict(mean=v.mean(), median=np.median(v), max=v.max(), min=v.min(), std=v.std())


def table(title, results, widths, methods):
    lines = [f"\n{title}", "",
             "| width | method | runs | MGRIT diverged | mean | median | max | min | std | "
             "paper mean | paper median | paper max | paper min | paper std |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for width in widths:
        for method in methods:
            runs = results.get((width, method), [])
            accs = [r[0] for r in runs if r[0] is not None]  # None: diverged unvalidated
            diverged = sum(bool(r[2]) for r in runs)
            if not accs:
                continue
            s = summary(accs)
            paper = PAPER.get((width, method), ("",) * 5)  # the paper has no equal-time runs
            lines.append(f"| {width} | {method} | {len(accs)} | {diverged} | " +
                         " | ".join(f"{100 * s[k]:.1f} %" for k in
                                    ("mean", "median", "max", "min", "std")) +
                         " | " + " | ".join(paper) + " |")
            emit(bench="nested_study_summary", table=title, width=width, method=method,
                 runs=len(accs), **{k: float(v) for k, v in s.items()})
    print("\n".join(lines), flush=True)


def figure(results, widths, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise SystemExit(f"--png needs matplotlib ({exc})")
    fig, axes = plt.subplots(len(widths), 1, figsize=(7, 3.6 * len(widths)), squeeze=False)
    for ax, width in zip(axes[:, 0], widths):
        acc, pts, _ = max(results[(width, "non_nested")], key=lambda r: r[0])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], color="red",
                label=f"non-nested (best, {100 * acc:.1f} %)")
        acc, run, _ = max(results[(width, "nested")], key=lambda r: r[0])
        for level, color in zip(range(3), ("C0", "C2", "C4")):
            pts = [(p[0], p[1]) for p in run if p[2] == level]
            if pts:
                ax.plot(*zip(*pts), color=color,
                        label=f"nested level {level} ({16 * 2 ** level} layers)")
        ax.set_title(f"peaks, width {width}: best runs (nested {100 * acc:.1f} %)")
        ax.set_xlabel("work units (non-nested iterations)")
        ax.set_ylabel("validation accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    log(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[5, 8])
    ap.add_argument("--seeds", type=int, default=12, help="per hyperparameter set (4 sets)")
    ap.add_argument("--first-seed", type=int, default=0,
                    help="continue a study: run seeds first-seed .. seeds-1")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--validation", type=int, default=1000)
    ap.add_argument("--schedule", type=int, nargs=3, default=[200, 125, 75])
    ap.add_argument("--non-nested-iterations", type=int, default=188)
    ap.add_argument("--d", type=int, default=2, help="MGRIT cycles per gradient")
    ap.add_argument("--d-refine", type=int, default=10,
                    help="cycles for the first --refine-steps iterations after a refinement")
    ap.add_argument("--refine-steps", type=int, default=3)
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--exact", action="store_true", help="serial (exact) gradients")
    ap.add_argument("--no-equal-time", dest="equal_time", action="store_false")
    ap.add_argument("--validate-every", type=int, default=5)
    ap.add_argument("--clock", choices=["cpu", "wall"], default="cpu",
                    help="what the work unit measures: this process's CPU time (default; "
                         "on a shared machine wall time measures the other users) or wall time")
    ap.add_argument("--skip", metavar="ROWS", nargs="+", default=[],
                    help="continue a stopped study: skip the runs whose rows are in these "
                         "files (one row per method, as this script prints them)")
    ap.add_argument("--png", default=None)
    ap.add_argument("--summarize", metavar="ROWS",
                    help="print the tables (and --png) from the JSON rows of an earlier run "
                         "(its first --seeds seeds)")
    ap.add_argument("--quick", action="store_true",
                    help="1 seed, 1000 samples, width 8, schedule 20/12/8, 19 iterations")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.samples, args.widths = 1, 1000, [8]
        args.schedule, args.non_nested_iterations = [20, 12, 8], 19
    if args.clock == "cpu":
        # Every timing of the run (the training histories' "wall_time" included) reads
        # this process's CPU time; one thread (OMP_NUM_THREADS=1) makes it the work done.
        time.perf_counter = time.process_time
    if args.summarize:
        report(read_rows(args.summarize, args.seeds), args)
        return
    done = done_runs(args.skip)
    results = {}
    # Seeds outermost: a study stopped early has the same number of runs in every
    # configuration.
    for seed, width, magnitude, gamma in itertools.product(range(args.first_seed, args.seeds),
                                                            args.widths,
                                                            [0.0, 1e-6], [1e-5, 1e-7]):
        if (seed, width, magnitude, gamma) in done:
            continue
        nested_recs, div_n = run_nested(width, magnitude, gamma, seed, args)
        budget = nested_recs[-1]["wall_time"] if args.equal_time and nested_recs else None
        recs, div_s = run_non_nested(width, magnitude, gamma, seed, args,
                                     args.non_nested_iterations, budget)
        # the paper's work unit: the mean time of one non-nested iteration
        base = recs[min(args.non_nested_iterations, len(recs)) - 1]
        unit = base["wall_time"] / min(args.non_nested_iterations, len(recs))
        for r in recs + nested_recs:
            r["work_units"] = r["wall_time"] / unit
        n_iter = min(args.non_nested_iterations, len(recs))
        acc_n = accuracy_at(nested_recs, len(nested_recs))
        acc_s = accuracy_at(recs, n_iter)
        wu_n = nested_recs[-1]["work_units"] if nested_recs else 0.0
        runs = [("nested", acc_n, nested_recs, wu_n, div_n),
                ("non_nested", acc_s, recs[:n_iter], float(n_iter),
                 div_s and len(recs) <= args.non_nested_iterations)]
        if args.equal_time:
            k = max(1, int(round(wu_n)))
            runs.append(("non_nested:equal_time", accuracy_at(recs, k), recs[:k],
                         float(min(k, len(recs))), div_s and len(recs) <= k))
        for method, acc, rs, wu, diverged in runs:
            emit(bench="nested_study", width=width, method=method, magnitude=magnitude,
                 gamma_tik=gamma, seed=seed, val_accuracy=acc, iterations=len(rs),
                 work_units=round(wu, 2), exact=args.exact, d=args.d, diverged=diverged,
                 curve=curve(rs))
            results.setdefault((width, method), []).append((acc, curve(rs), diverged))
        log(f"w={width} m={magnitude} g={gamma} seed={seed}: nested {acc_n} "
            f"({wu_n:.0f} units{', MGRIT diverged' if div_n else ''}), non-nested "
            f"{n_iter} it {acc_s}{', MGRIT diverged' if div_s else ''}" +
            (f", equal time {runs[-1][3]:.0f} it {runs[-1][1]}" if args.equal_time else ""))
    report(results, args)


def report(results, args):
    protocol = "exact gradients" if args.exact else \
        f"one-shot d = {args.d} (d = {args.d_refine} for {args.refine_steps} after refinement)"
    table(f"Table A: nested vs non-nested at {args.non_nested_iterations} iterations "
          f"({protocol})", results, args.widths, ["nested", "non_nested"])
    if args.equal_time:
        table(f"Table B: nested vs non-nested for the same {args.clock} time ({protocol})",
              results,
              args.widths, ["nested", "non_nested:equal_time"])
    if args.png:
        figure(results, args.widths, args.png)


if __name__ == "__main__":
    main()
