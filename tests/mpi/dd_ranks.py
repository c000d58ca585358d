"""Run under mpiexec (or import run()): every training method on a process grid.

    mpiexec -n K python -m mpi4py tests/mpi/dd_ranks.py OUT.npz LAYERS DATA CKPT_DIR

LAYERS x DATA must be K. Rank 0 saves, per method, the weights and losses:
serial and mgrit (L-BFGS, full batch), sgd (mini-batches), pd
(ParameterDecomposition, one subdomain per layer rank) and sapts
(DataDecomposition, one micro-batch per data group); mgrit (warm states
per data group), pd and sapts also resumed from a checkpoint after 3 of
their 6 steps.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp

METHODS = ("serial", "mgrit", "sgd", "pd", "sapts")
RESUMED = ("mgrit", "pd", "sapts")


def run(method, layers, data, parts=None, checkpoint=None, iterations=6, resume=False,
        comm=None):
    """Train with ``method`` on a layers x data grid of ``comm`` (parts: subdomains or
    micro-batches, default one per layer rank / data group)."""
    grid = lp.ProcessGrid(comm, layers=layers, data=data)
    X, Y = lp.datasets.peaks(n=120, seed=0)
    net = grid.network(2, 5, 12, 5, T=3.0, activation="tanh", gamma_tik=1e-4, gamma_ddt=1e-3)
    theta = net.init("glorot", seed=0)
    kw = {}
    if method in ("serial", "mgrit"):
        opt = lp.optim.LBFGS(memory=4)
        if method == "mgrit":
            kw["solver"] = grid.mgrit(cfactor=2, tol=1e-12, max_iter=60)
    elif method == "sgd":
        opt = lp.optim.SGD(lr=0.05)
        kw["batch_size"] = 40
    elif method == "pd":
        opt = lp.dd.ParameterDecomposition("adam", 3, subdomains=parts, local_lr=0.01)
    else:
        opt = lp.dd.DataDecomposition(2, micro_batches=parts, radius=0.2)
        kw["batch_size"] = 60
    h = lp.train(net, theta, X, Y, opt, iterations=iterations, checkpoint=checkpoint,
                 checkpoint_every=3, resume=resume, **kw)
    return theta.gather(), np.array(h["loss"])


def main():
    out, layers, data, ckpt = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    comm = MPI.COMM_WORLD
    saved = {}
    for method in METHODS:
        saved[f"{method}_theta"], saved[f"{method}_loss"] = run(method, layers, data, comm=comm)
    for method in RESUMED:  # stop after 3 steps, resume to 6
        d = f"{ckpt}/{method}"
        run(method, layers, data, checkpoint=d, iterations=3, comm=comm)
        saved[f"{method}_resumed"], _ = run(method, layers, data, checkpoint=d, resume=True,
                                            comm=comm)
    if comm.rank == 0:
        np.savez(out, **saved)


if __name__ == "__main__":
    main()
