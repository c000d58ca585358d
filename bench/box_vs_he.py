"""Box vs He initialization with LSGD on regression, across depth.

sin(2 pi x) and the discontinuous two-polynomial function on [0, 1]; ReLU
ODE-ResNets of width 8 with h = 1 (T = N, the plain ResNet u + sigma(W u + b)
the Box paper studies), inputs zero-padded to the width, depths 4 .. 128;
LSGD: the output layer by least squares before every Adam step on the hidden
layers. Reports the final relative L2 error on a validation grid (mean, median,
min, max over seeds) per function, depth and initializer, and a PNG.

    python bench/box_vs_he.py [--seeds 10] [--depths 4 8 16 32 64 128] [--png box_vs_he.png]

Width 2 (the talk's setting for the two-polynomial function) with the
diagnostics that separate the initial basis from training: the error of the
least-squares head on the initial hidden layers (no training), the best
constant fit's error, and the numerical rank of the final features [u_N, 1]:

    python bench/box_vs_he.py --width 2 --functions two_polynomials --diagnose \
        [--openings padding linear] [--no-lsgd]
"""

import argparse

import numpy as np

from _common import emit, log

import layerparallel as lp
from layerparallel.train import least_squares_head

FUNCTIONS = {"sine": (lp.datasets.sine, lambda x: np.sin(2 * np.pi * x)),
             "two_polynomials": (lp.datasets.two_polynomials,
                                 lp.datasets.two_polynomials_function)}


def features_rank(net, theta, X):
    """Numerical rank (singular values > 1e-8 of the largest) of [u_N, 1] on X."""
    U = net.forward(theta, X)
    F = np.hstack([U, np.ones((U.shape[0], 1))])
    s = np.linalg.svd(F, compute_uv=False)
    return int((s > 1e-8 * s[0]).sum())


def run(fname, depth, init, seed, args, opening="padding", diagnose=False):
    gen, f = FUNCTIONS[fname]
    X, Y = gen(n=args.samples, seed=seed)
    Xv = np.linspace(0, 1, 501)[:, None]
    Yv = f(Xv)
    net = lp.ODEResNet(1, args.width, depth, 1, T=float(depth), activation="relu",
                       opening=opening, head="regression", gamma_out=1e-8)
    theta = net.init(init, seed=seed, magnitude=1.0)

    def error():
        return float(np.linalg.norm(net.predict(theta, Xv) - Yv) / np.linalg.norm(Yv))

    diag = {}
    try:
        if diagnose:
            least_squares_head(net, theta, X, Y)
            A = np.hstack([X, np.ones_like(X)])
            lin = np.linalg.lstsq(A, Y, rcond=None)[0]
            Av = np.hstack([Xv, np.ones_like(Xv)])
            diag = dict(initial_ls_error=error(), initial_rank=features_rank(net, theta, X),
                        constant_error=float(np.linalg.norm(Yv - Y.mean())
                                             / np.linalg.norm(Yv)),
                        linear_error=float(np.linalg.norm(Av @ lin - Yv) / np.linalg.norm(Yv)))
        lp.train(net, theta, X, Y, lp.optim.Adam(lr=args.lr), iterations=args.iterations,
                 lsgd=args.lsgd)
        if args.lsgd:
            least_squares_head(net, theta, X, Y)
        err = error()
        if diagnose:
            diag["final_rank"] = features_rank(net, theta, X)
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        log(f"{fname} N={depth} {init} seed={seed}: failed ({exc})")
        err = float("inf")
    return (float(err), diag) if diagnose else float(err)


def diagnose(args):
    """Width-2 study: per opening, function, depth and initializer, the final and
    initial-basis errors, the constant fit and the feature ranks (medians)."""
    print(f"\n| function | opening | N | init | final error (median) | initial LS error | "
          f"constant fit | linear fit | rank [u_N, 1] initial / final |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fname in args.functions:
        for opening in args.openings:
            for depth in args.depths:
                for init in ("box", "he"):
                    runs = [run(fname, depth, init, s, args, opening, True)
                            for s in range(args.seeds)]
                    errs = [e for e, _ in runs]
                    ds = [d for _, d in runs if d]
                    med = {k: float(np.median([d[k] for d in ds if k in d]))
                           for k in ("initial_ls_error", "constant_error", "linear_error",
                                     "initial_rank",
                                     "final_rank")} if ds else {}
                    emit(bench="box_vs_he_diagnose", function=fname, opening=opening,
                         depth=depth, init=init, width=args.width, lsgd=args.lsgd,
                         seeds=args.seeds, errors=errs, **med)
                    print(f"| {fname} | {opening} | {depth} | {init} | {np.median(errs):.2e} | "
                          f"{med.get('initial_ls_error', float('nan')):.2e} | "
                          f"{med.get('constant_error', float('nan')):.2e} | "
                          f"{med.get('linear_error', float('nan')):.2e} | "
                          f"{med.get('initial_rank', 0):.0f} / {med.get('final_rank', 0):.0f} |",
                          flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128])
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--samples", type=int, default=500)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--png", default=None)
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS), choices=list(FUNCTIONS))
    ap.add_argument("--openings", nargs="+", default=["padding"],
                    choices=["padding", "linear", "activation"])
    ap.add_argument("--no-lsgd", dest="lsgd", action="store_false",
                    help="plain Adam on every parameter instead of LSGD")
    ap.add_argument("--diagnose", action="store_true",
                    help="the width-2 diagnostics table instead of the depth study")
    args = ap.parse_args()
    if args.diagnose:
        diagnose(args)
        return
    table = {}
    for fname in args.functions:
        for depth in args.depths:
            for init in ("box", "he"):
                errs = [run(fname, depth, init, s, args) for s in range(args.seeds)]
                table[(fname, depth, init)] = errs
                finite = [e for e in errs if np.isfinite(e)]
                emit(bench="box_vs_he", function=fname, depth=depth, init=init,
                     seeds=args.seeds, mean=float(np.mean(finite)) if finite else None,
                     median=float(np.median(errs)), min=float(np.min(errs)),
                     max=float(np.max(errs)), failed=len(errs) - len(finite))
                log(f"{fname:16s} N={depth:4d} {init:4s} median rel. error "
                    f"{np.median(errs):.3e}")
    print(f"\n{'function':16s} {'N':>4s} {'box median':>11s} {'he median':>11s} "
          f"{'box max':>9s} {'he max':>9s}")
    for fname in args.functions:
        for depth in args.depths:
            b, h = table[(fname, depth, "box")], table[(fname, depth, "he")]
            print(f"{fname:16s} {depth:4d} {np.median(b):11.3e} {np.median(h):11.3e} "
                  f"{np.max(b):9.2e} {np.max(h):9.2e}")
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        for ax, fname in zip(axes, args.functions):
            for init, style in (("box", "o-"), ("he", "s--")):
                med = [np.median(table[(fname, d, init)]) for d in args.depths]
                lo = [np.min(table[(fname, d, init)]) for d in args.depths]
                hi = [np.max(table[(fname, d, init)]) for d in args.depths]
                ax.plot(args.depths, med, style, label=f"{init} (median)")
                ax.fill_between(args.depths, lo, np.minimum(hi, 1e3), alpha=0.15)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("residual layers N")
            ax.set_ylabel("relative L2 error")
            ax.set_title(f"{fname}, LSGD, {args.seeds} seeds")
            ax.legend()
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)
        log(f"wrote {args.png}")


if __name__ == "__main__":
    main()
