"""Run under mpiexec: the layer-parallel loss, gradient and u_N with the
residual layers on the GPU (every rank uses the device; one GPU is shared).

    mpiexec -n K python -m mpi4py tests/mpi/gpu_ranks.py OUT.npz
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def main():
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=300, seed=3)
    net = lp.ODEResNet(2, 8, 37, 5, T=4.0, activation="tanh", gamma_tik=1e-3, gamma_ddt=1e-2,
                       gamma_out=1e-3, comm=comm, device="cuda")
    theta = net.init("glorot", seed=2)
    # A fixed number of cycles: 1 and 2 ranks do the same arithmetic.
    mg = lp.MGRIT(cfactor=4, tol=None, rtol=None, max_iter=20, comm=comm, warm_start=False)
    J, g, _ = net.loss_and_grad(theta, X, Y, solver=mg)
    U, _ = net.forward(theta, X, solver=mg)
    full = g.gather()
    if comm.rank == 0:
        np.savez(sys.argv[1], J=J, g=full, U=U)


if __name__ == "__main__":
    main()
