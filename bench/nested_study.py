"""The seed paper's nested-iteration robustness study on peaks, with our own numbers.

Peaks, widths 5 and 8, 64 residual layers, T = 5; nested iteration with three
levels (16, 32, 64 layers) and schedule 200/125/75 against non-nested training
of the 64-layer net for the same wall time (the nested run's total in work
units; the paper used 188 steps). Hyperparameters: initial weight magnitude
{0, 1e-6} of the residual layers (opening layer and
classifier Glorot, as in the seed code) x Tikhonov {1e-5, 1e-7}, `--seeds` seeds each (12 in the paper: 48
runs per width per method). Prints JSON rows per run and a summary table
(mean/median/max/min/std of validation accuracy); `--png` draws validation
accuracy against work units for the best run of each method.

    python bench/nested_study.py --quick                  # a few minutes
    python bench/nested_study.py --seeds 12 --png nested.png
    python bench/nested_study.py --one-shot 2 ...         # layer-parallel one-shot MGRIT
"""

import argparse
import itertools
import time

import numpy as np

from _common import emit, log

import layerparallel as lp


def run(width, magnitude, gamma, seed, nested, args, iterations=None):
    X, Y = lp.datasets.peaks(n=args.samples + args.validation, seed=seed)
    X, Y, Xv, Yv = lp.datasets.train_validation_split(X, Y, args.validation
                                                      / (args.samples + args.validation),
                                                      seed=seed)
    net = lp.ODEResNet(2, width, 64, 5, T=5.0, activation="smoothrelu", gamma_tik=gamma)
    kw = dict(validation=(Xv, Yv), validate_every=args.validate_every)
    if args.one_shot:
        kw.update(solver=lp.MGRIT(cfactor=args.cfactor), one_shot=args.one_shot)
    opt = lp.optim.LBFGS(memory=5)
    t0 = time.perf_counter()
    if nested:
        _, theta, h = lp.nested_train(net, X, Y, opt, levels=3, schedule=args.schedule,
                                      interp=args.interp, magnitude=magnitude, seed=seed, **kw)
        unit = h.work_unit_seconds
    else:
        theta = net.init("uniform", seed=seed, magnitude=magnitude, outer="glorot")
        h = lp.train(net, theta, X, Y, opt, iterations=iterations, **kw)
        unit = h["wall_time"][-1] / len(h["wall_time"])
        h["work_units"] = [t / unit for t in h["wall_time"]]
    acc = h.last("val_accuracy")
    return acc, h, time.perf_counter() - t0


def summary(values):
    v = np.array(values)
    return dict(mean=v.mean(), median=np.median(v), max=v.max(), min=v.min(), std=v.std())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[5, 8])
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--validation", type=int, default=1000)
    ap.add_argument("--schedule", type=int, nargs=3, default=[200, 125, 75])
    ap.add_argument("--interp", default="constant")
    ap.add_argument("--one-shot", type=int, default=None)
    ap.add_argument("--cfactor", type=int, default=4)
    ap.add_argument("--validate-every", type=int, default=5)
    ap.add_argument("--png", default=None)
    ap.add_argument("--quick", action="store_true", help="2 seeds, 2000 samples, width 8")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.samples, args.widths = 2, 2000, [8]
    results = {}
    for width in args.widths:
        for magnitude, gamma, seed in itertools.product([0.0, 1e-6], [1e-5, 1e-7],
                                                        range(args.seeds)):
            acc_n, h_n, t_n = run(width, magnitude, gamma, seed, True, args)
            steps = max(1, int(round(h_n["work_units"][-1])))  # same wall time
            acc_s, h_s, t_s = run(width, magnitude, gamma, seed, False, args, steps)
            for method, acc, h, t in (("nested", acc_n, h_n, t_n),
                                      ("non_nested", acc_s, h_s, t_s)):
                emit(bench="nested_study", width=width, method=method, magnitude=magnitude,
                     gamma_tik=gamma, seed=seed, val_accuracy=acc, iterations=len(h["loss"]),
                     work_units=h["work_units"][-1], wall_s=t)
                results.setdefault((width, method), []).append((acc, h))
            log(f"w={width} m={magnitude} g={gamma} seed={seed}: nested {acc_n:.3f}, "
                f"non-nested {acc_s:.3f} ({steps} steps)")
    print(f"\n{'width':>5} {'method':>11} {'runs':>4} {'mean':>7} {'median':>7} {'max':>7} "
          f"{'min':>7} {'std':>7}")
    for (width, method), runs in sorted(results.items()):
        s = summary([a for a, _ in runs])
        print(f"{width:5d} {method:>11} {len(runs):4d} " +
              " ".join(f"{100 * s[k]:6.1f}%" for k in ("mean", "median", "max", "min", "std")))
        emit(bench="nested_study_summary", width=width, method=method, runs=len(runs),
             **{k: float(v) for k, v in s.items()})
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, len(args.widths), figsize=(6 * len(args.widths), 4),
                                 squeeze=False)
        for ax, width in zip(axes[0], args.widths):
            for method in ("nested", "non_nested"):
                acc, h = max(results[(width, method)], key=lambda r: r[0])
                pts = [(w, a) for w, a in zip(h["work_units"], h["val_accuracy"])
                       if a is not None]
                ax.plot(*zip(*pts), label=f"{method.replace('_', '-')} (best {100 * acc:.1f}%)")
            ax.set_xlabel("work units (fine-level iterations)")
            ax.set_ylabel("validation accuracy")
            ax.set_title(f"peaks, width {width}, 64 layers")
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)
        log(f"wrote {args.png}")


if __name__ == "__main__":
    main()
