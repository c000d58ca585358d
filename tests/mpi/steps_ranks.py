"""Run under mpiexec: MGRIT over training steps distributed by blocks of steps.

    mpiexec -n K python -m mpi4py tests/mpi/steps_ranks.py OUT.npz

Solves every preset and cycle of XOR and of a small binary-addition problem
(the same settings as tests/test_steps.py) with comm=COMM_WORLD; every rank
checks it holds the same w_N, and rank 0 saves w_N, the iterations and the
residual histories.
"""

import sys

import numpy as np
from mpi4py import MPI

import layerparallel as lp

sys.path.insert(0, __file__.rsplit("/", 2)[0])  # tests/ for the shared settings
from test_steps import CASES, make_problem, solve_kwargs  # noqa: E402


def main():
    out = sys.argv[1]
    comm = MPI.COMM_WORLD
    saved = {}
    for case in CASES:
        name, solver, cycle, N = case
        problem = make_problem(name)
        res = lp.steps.solve(problem, None, N, cycle=cycle, solver=solver, comm=comm,
                             **solve_kwargs())
        gathered = comm.allgather(res.weights)
        assert all(np.array_equal(g, gathered[0]) for g in gathered), "w_N differs across ranks"
        assert res.first_point <= res.last_point
        # every owned state agrees with serial training
        ref = problem.serial(N, solver=solver, all_states=True)
        owned = np.array([res.state(p) for p in range(res.first_point, res.last_point + 1)])
        err = np.abs(owned - ref[res.first_point:res.last_point + 1]).max()
        key = f"{name}_{solver}_{cycle}"
        saved[key + "_w"] = res.weights
        saved[key + "_it"] = np.array(res.iterations)
        saved[key + "_r"] = np.array(res.residuals)
        saved[key + "_states_err"] = np.array(comm.allreduce(err, op=MPI.MAX))
    # a Python callable (the engine's PropagatorSolver path) distributed the same way
    xor = make_problem("xor")
    res = lp.steps.solve(xor.phi("solver3"), xor.initial_weights(), 64, cycle="F", comm=comm,
                         **solve_kwargs())
    saved["callable_w"] = res.weights
    saved["callable_r"] = np.array(res.residuals)
    # XBraid's conventions (the cases above run the package's, the default)
    res = lp.steps.solve(xor, None, 64, cycle="F", solver="solver1", comm=comm,
                         conventions="xbraid", **solve_kwargs())
    saved["xbraid_w"] = res.weights
    saved["xbraid_it"] = np.array(res.iterations)
    saved["xbraid_r"] = np.array(res.residuals)
    if comm.rank == 0:
        np.savez(out, **saved)


if __name__ == "__main__":
    main()
