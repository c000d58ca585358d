"""Run under mpiexec: layer-parallel loss and gradient of a distributed net.

    mpiexec -n K python -m mpi4py tests/mpi/resnet_ranks.py OUT.npz [N] [cfactor] [cycle] [storage] [max_levels] [dtype]

Rank 0 writes J, the gathered gradient and u_N (serial across ranks and by
MGRIT) to OUT.npz for the test to compare with the one-rank serial result.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp


def main():
    out = sys.argv[1]
    N = int(sys.argv[2]) if len(sys.argv) > 2 else 37
    cf = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    cycle = sys.argv[4] if len(sys.argv) > 4 else "V"
    storage = sys.argv[5] if len(sys.argv) > 5 else "all"
    max_levels = int(sys.argv[6]) if len(sys.argv) > 6 else 10
    dtype = sys.argv[7] if len(sys.argv) > 7 else "float64"
    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=150, seed=3)
    net = lp.ODEResNet(2, 6, N, 5, T=4.0, activation="tanh", gamma_tik=1e-3, gamma_ddt=1e-2,
                       gamma_out=1e-3, comm=comm, dtype=dtype)
    theta = net.init("glorot", seed=2)
    J_serial, g_serial = net.loss_and_grad(theta, X, Y)
    # float32 residuals stop near 1e-7 of the states: a relative tolerance
    tol = dict(tol=1e-11) if dtype == "float64" else dict(tol=None, rtol=1e-6)
    mg = lp.MGRIT(cfactor=cf, cycle=cycle, max_iter=100, storage=storage,
                  max_levels=max_levels, comm=comm, warm_start=False, **tol)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    U, _ = net.forward(theta, X, solver=mg)
    full_serial, full = g_serial.gather(), g.gather()
    norm = g.norm()
    # scatter is gather's inverse; dot reduces over the ranks like the gathered vector's
    assert np.array_equal(net.scatter(full).data, g.data)
    ref = full.astype(np.float64) @ full_serial.astype(np.float64)
    assert abs(g.dot(g_serial) - ref) <= 1e-12 * abs(ref)
    if comm.rank == 0:
        np.savez(out, J_serial=J_serial, J=J, g_serial=full_serial, g=full, U=U, norm=norm,
                 its_fwd=info["forward"]["iterations"], its_adj=info["adjoint"]["iterations"],
                 res_fwd=np.array(info["forward"]["residuals"]))


if __name__ == "__main__":
    main()
