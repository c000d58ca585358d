"""What the cross-rank agreement costs per call, next to the call it guards.

    mpiexec -n K python -m mpi4py bench/agreement_cost.py [--layers 64] [--samples 4000]

Rows (rank 0): the agreement alone (one Allgather of two int64 per rank plus
the fingerprint digest, as every distributed forward/loss/loss_and_grad makes
it), and one loss_and_grad with serial propagation across the ranks and with
a one-shot MGRIT solve (which include the agreement), interleaved, min and
median over the repetitions.
"""

import argparse
import os
import sys
import time

import numpy as np
from mpi4py import MPI

sys.path.insert(0, os.path.dirname(__file__))
import layerparallel as lp  # noqa: E402
from layerparallel import _collective as collective  # noqa: E402
from _common import emit  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--layers", type=int, default=64)
    p.add_argument("--width", type=int, default=8)
    p.add_argument("--samples", type=int, default=4000)
    p.add_argument("--reps", type=int, default=30)
    a = p.parse_args()
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=a.samples, seed=0)
    net = lp.ODEResNet(2, a.width, a.layers, 5, comm=comm)
    theta = net.init("box", seed=0)
    solver = lp.MGRIT(cfactor=4, tol=None, max_iter=1, comm=comm)
    fp = {"X shape": X.shape, "Y shape": Y.shape, "solver": repr(solver._key()[:-1])}
    cases = {
        "agreement": lambda: collective.agree(comm, None, fp, "bench"),
        "loss_and_grad serial": lambda: net.loss_and_grad(theta, X, Y),
        "loss_and_grad one-shot": lambda: net.loss_and_grad(theta, X, Y, solver=solver),
    }
    times = {k: [] for k in cases}
    for _ in range(a.reps):  # interleaved
        for name, fn in cases.items():
            comm.Barrier()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    if comm.rank == 0:
        for name, ts in times.items():
            emit(case=name, ranks=comm.size, layers=a.layers, samples=a.samples,
                 min_us=round(1e6 * min(ts), 1), median_us=round(1e6 * float(np.median(ts)), 1),
                 load=os.getloadavg()[0])


if __name__ == "__main__":
    main()
