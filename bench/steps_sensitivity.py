"""How much one training-steps table's iteration counts move under rounding-level changes.

Solves one table of the training-steps paper (bench/steps_tables.py's TABLES,
under the same conventions) at each N once as the paper states it, then K
times with the initial weights multiplied by (1 + eps z), z standard normal
(eps = 1e-15 by default: a change of the order of the last bits, smaller
than any difference between two implementations' floating-point details).
Where the solve is well conditioned every perturbed run gives the same count;
near the limit of convergence the count spreads, and a count that differs
from the paper's by less than that spread says nothing about a difference of
method. Rows: {"bench": "steps_sensitivity", "table", "N", "alpha", "eps",
"seed" (None: unperturbed), "iterations", "rho"}, then a summary per N.

    python bench/steps_sensitivity.py [--table 6] [--n 3200,6400,12800] [--seeds 32]
        [--eps 1e-15] [--alpha 1.0] [--index-point end]
"""

import argparse
import collections
import json
import sys

import numpy as np

import layerparallel as lp
from steps_tables import TABLES, make


def solve(spec, N, w0, alpha, index_point):
    try:
        res = lp.steps.solve(make(spec["problem"], spec.get("examples")), w0, N,
                             cycle=spec["cycle"], solver=spec["solver"], alpha_base=alpha,
                             mapping="local", index_point=index_point,
                             init_guess=np.zeros_like(w0), divergence=1e300,
                             skip_first_down=True)
    except lp.MGRITDiverged:
        return None, None
    return res.iterations, round(res.rho, 4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", type=int, default=6, choices=sorted(TABLES))
    ap.add_argument("--n", default="3200,6400,12800")
    ap.add_argument("--seeds", type=int, default=32)
    ap.add_argument("--eps", type=float, default=1e-15)
    ap.add_argument("--alpha", type=float, default=1.0,
                    help="alpha_base (XOR: the text's 1.0; the captions say 0.1)")
    ap.add_argument("--index-point", default="end", choices=["start", "end"])
    args = ap.parse_args()
    spec = TABLES[args.table]
    w_paper = make(spec["problem"], spec.get("examples")).initial_weights()
    summary = []
    for N in (int(v) for v in args.n.split(",")):
        counts = collections.Counter()
        rhos = []
        for seed in [None] + list(range(1, args.seeds + 1)):
            w0 = w_paper if seed is None else w_paper * (
                1.0 + args.eps * np.random.default_rng(seed).standard_normal(w_paper.shape))
            its, rho = solve(spec, N, w0, args.alpha, args.index_point)
            print(json.dumps(dict(bench="steps_sensitivity", table=args.table, N=N,
                                  alpha=args.alpha, eps=args.eps, seed=seed, iterations=its,
                                  rho=rho)), flush=True)
            if seed is None:
                unperturbed = (its, rho)
            else:
                counts[its] += 1
                rhos.append(rho)
        paper = spec["iterations"][spec["N"].index(N)] if N in spec["N"] else "-"
        paper_rho = spec["rho"][spec["N"].index(N)] if N in spec["N"] else "-"
        known = [r for r in rhos if r is not None]
        summary.append((N, paper, paper_rho, unperturbed, counts, known))
    print(f"\nTable {args.table}, alpha_base {args.alpha}, index point {args.index_point}: "
          f"iterations under {args.seeds} perturbations of w_0 by {args.eps:g} (relative)",
          file=sys.stderr)
    print("| N | paper iters (rho) | unperturbed | perturbed: iterations x runs | rho range |",
          file=sys.stderr)
    print("|---|---|---|---|---|", file=sys.stderr)
    for N, paper, paper_rho, (its, rho), counts, known in summary:
        spread = ", ".join(f"{k} x{v}" for k, v in sorted(counts.items(),
                                                          key=lambda kv: (kv[0] is None,
                                                                          kv[0] or 0)))
        rng = f"{min(known):.3f}-{max(known):.3f}" if known else "-"
        print(f"| {N} | {paper} ({paper_rho}) | {its} ({rho}) | {spread} | {rng} |",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
