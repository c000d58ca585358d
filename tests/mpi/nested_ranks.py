"""Run under mpiexec: a nested-iteration run of a distributed net; rank 0 saves the result.

    mpiexec -n K python -m mpi4py tests/mpi/nested_ranks.py OUT.npz
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def main():
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=300, seed=0)
    net = lp.ODEResNet(2, 5, 24, 5, T=5.0, gamma_tik=1e-5, comm=comm)
    fine, theta, h = lp.nested_train(net, X, Y, lp.optim.LBFGS(), levels=3, schedule=(6, 5, 4),
                                     interp="linear", magnitude=1e-3, seed=2,
                                     solver=lp.MGRIT(cfactor=2, comm=comm), one_shot=2)
    full = theta.gather()
    if comm.rank == 0:
        np.savez(sys.argv[1], theta=full, loss=np.array(h["loss"]))


if __name__ == "__main__":
    main()
