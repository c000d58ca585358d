"""Run under mpiexec: 20 L-BFGS steps of a distributed net; rank 0 saves the weights.

    mpiexec -n K python -m mpi4py tests/mpi/train_ranks.py OUT.npz serial|mgrit|one_shot
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def main():
    out, mode = sys.argv[1], sys.argv[2]
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=400, seed=0)
    net = lp.ODEResNet(2, 6, 21, 5, T=4.0, gamma_tik=1e-4, gamma_ddt=1e-3, comm=comm)
    theta = net.init("box", seed=0)
    kw = {}
    if mode == "mgrit":
        kw = dict(solver=lp.MGRIT(cfactor=4, tol=1e-12, max_iter=100, comm=comm))
    elif mode == "one_shot":
        kw = dict(solver=lp.MGRIT(cfactor=2, comm=comm), one_shot=2)
    h = lp.train(net, theta, X, Y, lp.optim.LBFGS(memory=5), iterations=20, **kw)
    full = theta.gather()
    if comm.rank == 0:
        np.savez(out, theta=full, loss=np.array(h["loss"]))


if __name__ == "__main__":
    main()
