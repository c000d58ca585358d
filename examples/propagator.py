"""MGRIT on a propagator written in Python: u' = A u (a damped rotation),
one explicit Euler step per point, solved across the steps by the same engine
that trains the networks, and compared with serial time stepping.

    python examples/propagator.py
    mpiexec -n 2 python examples/propagator.py
"""

import numpy as np
from mpi4py import MPI

import layerparallel as lp

comm = MPI.COMM_WORLD
n_steps, dt, cfactor = 256, 0.01, 2
A = np.array([[-0.1, 1.0], [-1.0, -0.1]])


def phi(level, step, w):
    """One step on ``level``: it spans cfactor**level fine steps."""
    return w + dt * cfactor ** level * (A @ w)


u0 = np.array([1.0, 0.0])
assert lp.check_propagator(phi, u0) == []     # fit for MGRIT: deterministic, no in-place change
res = lp.solve(phi, u0, n_steps, solver=lp.MGRIT(cfactor=cfactor, tol=1e-12, comm=comm))

serial = u0.copy()
for p in range(n_steps):
    serial = phi(0, p, serial)
if res.last_point == n_steps:                  # the rank that owns the final point
    error = np.abs(res.state(n_steps) - serial).max()
    print(res)
    print(f"|u_N - serial| = {error:.2e} after {res.iterations} cycles, rho {res.rho:.3f}")
    assert error < 1e-10
