"""Run under mpiexec: a failure on some ranks only must reach every rank.

    mpiexec -n K python -m mpi4py tests/mpi/fault_ranks.py OUTDIR [CASE ...]

Runs the cases one after another in the same job (so every case also checks
that the ranks are still in step after the previous failure). Each rank
writes OUTDIR/started.rank<r> (the case it is in, so a hang can be named) and
at the end OUTDIR/rank<r>.json: {case: [exception type, message]} or
[None, result] for a case that raised nothing.
"""

import json
import os
import shutil
import sys
import warnings

import numpy as np
from mpi4py import MPI

import layerparallel as lp
from layerparallel import checkpoint as ckpt

COMM = MPI.COMM_WORLD
RANK, SIZE = COMM.Get_rank(), COMM.Get_size()
LAST = SIZE - 1
X, Y = lp.datasets.peaks(n=24, seed=1)


def net(**kw):
    args = dict(n_in=2, width=3, n_layers=8, n_out=5, T=2.0, comm=COMM)
    args.update(kw)
    return lp.ODEResNet(**args)


def train(n, theta, d, iterations, resume=False, **kw):
    return lp.train(n, theta, X, Y, lp.optim.LBFGS(), iterations=iterations, checkpoint=d,
                    checkpoint_every=1, resume=resume, **kw)


# --------------------------------------------------------------------------- arguments, shapes

def nan_x_one_rank(d):
    n = net()
    Xb = X.copy()
    if RANK == LAST:
        Xb[3, 1] = np.nan
    n.loss_and_grad(n.init(seed=0), Xb, Y, solver=lp.MGRIT(cfactor=2, comm=COMM))


def rows_differ(d):
    n = net()
    k = 20 if RANK == 1 else 24
    n.loss_and_grad(n.init(seed=0), X[:k], Y[:k])


def width_differs(d):
    net(width=4 if RANK == 1 else 3)


def layers_differ(d):
    net(n_layers=9 if RANK == LAST else 8)


def cfactor_differs(d):
    lp.MGRIT(cfactor=4 if RANK == 1 else 2, comm=COMM)


def bad_cfactor_one_rank(d):
    lp.MGRIT(cfactor=1 if RANK == LAST else 2, comm=COMM)


def phi_wrong_shape(d):
    lp.solve(lambda l, i, w: w[:-1] if RANK == 1 else 0.9 * w, np.ones(3), 12,
             lp.MGRIT(cfactor=2, comm=COMM))


def phi_raises(d):
    def phi(level, step, w):
        if step == 10:  # owned by the last rank
            raise KeyError("step 10 failed")
        return 0.9 * w
    lp.solve(phi, np.ones(3), 12, lp.MGRIT(cfactor=2, comm=COMM))


def phi_nan_serial(d):
    def phi(level, step, w):
        return w * np.nan if step == 10 else 0.9 * w
    lp.solve(phi, np.ones(3), 12, lp.MGRIT(max_levels=1, tol=None, max_iter=1, comm=COMM))


def u0_nan_one_rank(d):
    u0 = np.array([1.0, np.nan if RANK == 1 else 2.0])
    lp.solve(lambda l, i, w: 0.9 * w, u0, 12, lp.MGRIT(cfactor=2, comm=COMM))


def data_differs(d):
    n = net()
    Yb = Y[::-1].copy() if RANK == 1 else Y
    lp.train(n, n.init(seed=0), X, Yb, lp.optim.GD(0.1), iterations=1, check_data=True)


def init_seed_differs(d):
    n = net()
    lp.train(n, n.init(seed=RANK), X, Y, lp.optim.GD(0.1), iterations=1)


def callback_fails_one_rank(d):
    def callback(it, record):
        if it == 2 and RANK == 0:
            raise OSError("disk full")
    n = net()
    lp.train(n, n.init(seed=0), X, Y, lp.optim.GD(0.1), iterations=4, callback=callback)


def nested_schedule_one_rank(d):
    n = net()
    lp.nested_train(n, X, Y, lp.optim.GD(0.1), levels=2,
                    schedule=(1, 1, 1) if RANK == LAST else (1, 1))


def steps_cycle_one_rank(d):
    lp.steps.solve(lambda l, i, w: 0.9 * w, np.ones(2), 16, cycle="W" if RANK == 1 else "V",
                   comm=COMM)


def steps_w0_one_rank(d):
    w0 = np.array([1.0, np.inf if RANK == LAST else 1.0])
    lp.steps.solve(lambda l, i, w: 0.9 * w, w0, 16, comm=COMM)


def steps_phi_wrong_shape(d):
    lp.steps.solve(lambda l, i, w: w[:-1] if RANK == 1 else 0.9 * w, np.ones(3), 16, comm=COMM)


def engine_shape_check(d):
    """The compiled engine's own check of phi's output (no Python guard around phi)."""
    solver = lp.MGRIT(cfactor=2, comm=COMM)
    engine = lp._core.PropagatorSolver(lambda l, i, w: w[:-1] if RANK == 1 else 0.9 * w, 3, 12,
                                       solver.options(), solver._handle, [])
    engine.solve(np.ones(3), False, np.ones(3))


# --------------------------------------------------------------------------- checkpoints

def _written(d, iterations=2, seed=0):
    """d holds the set of a run to ``iterations`` (checkpoint every step)."""
    n = net()
    train(n, n.init(seed=seed), d, iterations)
    COMM.Barrier()


def _resume(d, iterations=3):
    n = net()
    theta = n.init("zeros")
    train(n, theta, d, iterations, resume=True)
    return theta


def _mine(d, it):
    return ckpt.path_for(d, RANK, it)


def set_incomplete_on_one_rank(d):
    """A kill between the ranks' writes of iteration 3: the last rank still has
    its file of 2 (the set of 2 was never removed), the others have 3 as well."""
    _written(d, 2)
    keep = os.path.join(d, "..", f"keep.rank{RANK}")
    shutil.copy(_mine(d, 2), keep)
    _resume(d, 3)  # commits 3, removes 2
    COMM.Barrier()
    shutil.copy(keep, _mine(d, 2))  # every rank has 2 again
    if RANK == LAST:
        os.unlink(_mine(d, 3))
    COMM.Barrier()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        theta = _resume(d, 5)
    n = net()
    reference = n.init(seed=0)
    train(n, reference, os.path.join(d, "..", "ref"), 5)
    same = bool(np.array_equal(theta.gather(), reference.gather()))
    noted = any("lacks the file" in str(w.message) for w in caught)
    return f"same={same} noted={noted or RANK != 0}"


def missing_on_one_rank(d):
    _written(d, 2)
    if RANK == 1:
        os.unlink(_mine(d, 2))
    COMM.Barrier()
    _resume(d)


def corrupt_on_one_rank(d):
    _written(d, 2)
    if RANK == 1:
        with open(_mine(d, 2), "wb") as f:
            f.write(b"not a checkpoint")
    COMM.Barrier()
    _resume(d)


def truncated_on_one_rank(d):
    _written(d, 2)
    if RANK == LAST:
        size = os.path.getsize(_mine(d, 2))
        with open(_mine(d, 2), "r+b") as f:
            f.truncate(size // 2)
    COMM.Barrier()
    _resume(d)


def _rewrite(path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def foreign_on_one_rank(d):
    _written(d, 2)
    other = os.path.join(d, "..", "other")
    n = lp.ODEResNet(2, 3, 8, 5, T=3.0, comm=COMM)  # a different network
    train(n, n.init(seed=0), other, 2)
    COMM.Barrier()
    if RANK == 1:
        shutil.copy(ckpt.path_for(other, 1, 2), _mine(d, 2))
    COMM.Barrier()
    _resume(d)


def nan_theta_on_one_rank(d):
    _written(d, 2)
    if RANK == 1:
        with np.load(_mine(d, 2)) as z:
            theta = z["theta"].copy()
        theta[0] = np.nan
        _rewrite(_mine(d, 2), theta=theta)
    COMM.Barrier()
    _resume(d)


def signature_not_json_on_one_rank(d):
    _written(d, 2)
    if RANK == LAST:
        _rewrite(_mine(d, 2), signature=np.array("{not json"))
    COMM.Barrier()
    _resume(d)


def other_iteration_on_one_rank(d):
    _written(d, 2)
    if RANK == 1:
        _rewrite(_mine(d, 2), iteration=np.array(-5))
    COMM.Barrier()
    _resume(d)


def not_a_directory(d):
    target = os.path.join(d, "..", "file")
    if RANK == 0:
        with open(target, "w") as f:
            f.write("x")
    COMM.Barrier()
    n = net()
    train(n, n.init(seed=0), target, 2)


def unwritable_on_one_rank(d):
    blocker = os.path.join(d, "..", "blocker")
    if RANK == 0:
        with open(blocker, "w") as f:
            f.write("x")
    COMM.Barrier()
    n = net()
    train(n, n.init(seed=0), os.path.join(blocker, "ck") if RANK == LAST else d, 2)


def _other_ranks(d, writers_all, optimizer):
    """Written by all ranks and resumed by all but the last (or the reverse):
    redistributed, the result equals the uninterrupted run to rounding."""
    n = net()
    reference = n.init(seed=0)
    lp.train(n, reference, X, Y, optimizer(), iterations=4)
    reference = reference.gather()
    sub = COMM.Split(0 if RANK < LAST else MPI.UNDEFINED, RANK)

    def run(comm, iterations, resume):
        n = lp.ODEResNet(2, 3, 8, 5, T=2.0, comm=comm)
        theta = n.init(seed=0) if not resume else n.init("zeros")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lp.train(n, theta, X, Y, optimizer(), iterations=iterations, checkpoint=d,
                     checkpoint_every=1, resume=resume)
        noted = any("redistributed" in str(w.message) for w in caught)
        return theta.gather(), noted

    small = None if sub == MPI.COMM_NULL else (sub if sub.Get_size() > 1 else None)
    if writers_all:
        run(COMM, 2, False)
        if sub != MPI.COMM_NULL:
            theta, noted = run(small, 4, True)
    else:
        if sub != MPI.COMM_NULL:
            run(small, 2, False)
        COMM.Barrier()
        theta, noted = run(COMM, 4, True)
    if sub != MPI.COMM_NULL:
        sub.Free()
    COMM.Barrier()
    if not writers_all or RANK < LAST:
        close = bool(np.allclose(theta, reference, rtol=1e-9, atol=1e-12))
        ranks = SIZE - 1 if writers_all else SIZE  # that wrote the last set
        tidy = sorted(os.listdir(d)) == sorted(
            [os.path.basename(ckpt.path_for(d, r, 4)) for r in range(ranks)] + [ckpt.MANIFEST])
        return f"close={close} noted={noted or RANK != 0} tidy={tidy}"
    return "close=True noted=True tidy=True"  # not in the smaller run


def fewer_ranks_resume(d):
    return _other_ranks(d, True, lp.optim.LBFGS)


def more_ranks_resume(d):
    return _other_ranks(d, False, lambda: lp.optim.Adam(lr=0.05))


# --------------------------------------------------------------------------- model files

def model_file_nan_theta_one_rank(d):
    n = net()
    theta = n.init(seed=0)
    if RANK == LAST:
        theta.data[0] = np.nan
    lp.save(os.path.join(d, "model.npz"), n, theta)


def model_file_unwritable(d):
    n = net()
    lp.save(os.path.join(d, "missing", "model.npz"), n, n.init(seed=0))


CASES = [nan_x_one_rank, rows_differ, width_differs, layers_differ, cfactor_differs,
         bad_cfactor_one_rank, phi_wrong_shape, phi_raises, phi_nan_serial, u0_nan_one_rank,
         data_differs, init_seed_differs, callback_fails_one_rank, nested_schedule_one_rank,
         steps_cycle_one_rank, steps_w0_one_rank, steps_phi_wrong_shape,
         engine_shape_check, set_incomplete_on_one_rank,
         missing_on_one_rank, corrupt_on_one_rank, truncated_on_one_rank, foreign_on_one_rank,
         nan_theta_on_one_rank, signature_not_json_on_one_rank, other_iteration_on_one_rank,
         not_a_directory, unwritable_on_one_rank, fewer_ranks_resume, more_ranks_resume,
         model_file_nan_theta_one_rank, model_file_unwritable]


def main():
    outdir = sys.argv[1]
    chosen = set(sys.argv[2:])
    seen = {}
    for case in CASES:
        if chosen and case.__name__ not in chosen:
            continue
        with open(os.path.join(outdir, f"started.rank{RANK}"), "w") as f:
            f.write(case.__name__)
        d = os.path.join(outdir, case.__name__, "ck")
        if RANK == 0:
            os.makedirs(d)
        COMM.Barrier()
        try:
            seen[case.__name__] = [None, case(d)]
        except Exception as exc:
            seen[case.__name__] = [type(exc).__name__, " ".join(str(exc).split())]
        COMM.Barrier()
    with open(os.path.join(outdir, f"rank{RANK}.json"), "w") as f:
        json.dump(seen, f, indent=1)


if __name__ == "__main__":
    main()
