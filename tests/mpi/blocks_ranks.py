"""Run under mpiexec: MGRIT with 2 fixed cycles on the whole batch and on blocks
of 40 rows (batch_block=40) over the ranks.

    mpiexec -n K python -m mpi4py tests/mpi/blocks_ranks.py OUT.npz

Rank 0 writes both losses and gathered gradients to OUT.npz for the test to
compare with one rank.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def main():
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=150, seed=5)
    net = lp.ODEResNet(2, 6, 13, 5, T=3.0, activation="tanh", gamma_tik=1e-3, gamma_ddt=1e-2,
                       gamma_out=1e-3, comm=comm)
    theta = net.init("glorot", seed=2)
    out = {}
    for key, block in (("whole", 0), ("blocked", 40)):
        mg = lp.MGRIT(cfactor=3, max_levels=3, tol=None, max_iter=2, warm_start=False,
                      batch_block=block, comm=comm)
        J, g, _ = net.loss_and_grad(theta, X, Y, solver=mg)
        assert net._parallel_model(mg).batch_blocks == (1 if block == 0 else 3)
        out[f"J_{key}"], out[f"g_{key}"] = J, g.gather()
    if comm.rank == 0:
        np.savez(sys.argv[1], **out)


if __name__ == "__main__":
    main()
