"""Run under mpiexec: failures must reach every rank, never hang one.

    mpiexec -n K python -m mpi4py tests/mpi/failure_ranks.py OUTDIR diverge|raise

Each rank writes OUTDIR/rank<r>.txt naming the exception it saw.
"""

import os
import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def main():
    outdir, case = sys.argv[1], sys.argv[2]
    comm = MPI.COMM_WORLD
    seen = "nothing"
    try:
        if case == "diverge":
            X, _ = lp.datasets.peaks(n=20, seed=0)
            net = lp.ODEResNet(2, 4, 64, 5, T=64.0, activation="relu", comm=comm)
            theta = net.init("he", seed=0)
            theta.W[...] *= 3.0
            net.forward(theta, X, solver=lp.MGRIT(cfactor=8, tol=1e-12, divergence=10.0,
                                                  comm=comm))
        else:
            def phi(level, step, w):
                if step == 33:  # a point owned by one rank only
                    raise KeyError("step 33 failed")
                return 0.9 * w

            lp.solve(phi, np.ones(4), 60, lp.MGRIT(cfactor=2, tol=1e-12, comm=comm))
    except lp.MGRITDiverged:
        seen = "MGRITDiverged"
    except KeyError:
        seen = "KeyError"
    with open(os.path.join(outdir, f"rank{comm.rank}.txt"), "w") as f:
        f.write(seen)


if __name__ == "__main__":
    main()
