"""Run under mpiexec: interval-batched against unbatched MGRIT sweeps.

    mpiexec -n K python -m mpi4py tests/mpi/batched_ranks.py OUT.npz

For V/F cycles, c = 2/4/8 and storage all/C on a net whose depth no c
divides, the loss, gradient and u_N with and without batching; rank 0 writes
them (gathered) to OUT.npz, with the number of batched step calls per solve.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp

CASES = [(c, cycle, storage) for c in (2, 4, 8) for cycle in ("V", "F")
         for storage in ("all", "C")]


def main():
    out = sys.argv[1]
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=60, seed=3)
    net = lp.ODEResNet(2, 5, 37, 5, T=4.0, activation="tanh", gamma_tik=1e-3, comm=comm)
    theta = net.init("glorot", seed=2)
    saved = {}
    for k, (c, cycle, storage) in enumerate(CASES):
        for batched in (False, True):
            mg = lp.MGRIT(cfactor=c, cycle=cycle, storage=storage, tol=1e-12, max_iter=60,
                          comm=comm, warm_start=False, batch_intervals=batched)
            J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
            U, _ = net.forward(theta, X, solver=mg)
            batches = comm.allreduce(info["forward"]["batches"] + info["adjoint"]["batches"])
            full = g.gather()
            if comm.rank == 0:
                tag = f"{k}_{int(batched)}"
                saved.update({f"J_{tag}": J, f"g_{tag}": full, f"U_{tag}": U,
                              f"it_{tag}": info["forward"]["iterations"],
                              f"batches_{tag}": batches})
    if comm.rank == 0:
        np.savez(out, cases=len(CASES), **saved)


if __name__ == "__main__":
    main()
