"""Interval-batched MGRIT sweeps (App::step_batch) against the unbatched
ones: the same bits for the ODE-ResNet forward and adjoint, V/F cycles,
c = 2/4/8, storage all/C, a depth no c divides, at 1 and 2 ranks (on the
host backend; tests/test_gpu.py checks the device)."""

import os

import numpy as np
import pytest

import layerparallel as lp

from conftest import MPI_READY, TESTS
from conftest import mpirun

CASES = [(c, cycle, storage) for c in (2, 4, 8) for cycle in ("V", "F")
         for storage in ("all", "C")]


def _net():
    X, Y = lp.datasets.peaks(n=60, seed=3)
    net = lp.ODEResNet(2, 5, 37, 5, T=4.0, activation="tanh", gamma_tik=1e-3)
    return net, net.init("glorot", seed=2), X, Y


@pytest.mark.parametrize("c, cycle, storage", CASES)
def test_batched_sweeps_give_the_unbatched_bits(c, cycle, storage):
    net, theta, X, Y = _net()
    results = {}
    for batched in (False, True):
        mg = lp.MGRIT(cfactor=c, cycle=cycle, storage=storage, tol=1e-12, max_iter=60,
                      warm_start=False, batch_intervals=batched)
        J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
        U, finfo = net.forward(theta, X, solver=mg)
        assert info["forward"]["converged"] and info["adjoint"]["converged"]
        batches = info["forward"]["batches"] + info["adjoint"]["batches"]
        assert (batches > 0) == batched  # the batched path really ran (or not)
        results[batched] = (J, g.data.copy(), U, info["forward"]["iterations"])
    (J0, g0, U0, it0), (J1, g1, U1, it1) = results[False], results[True]
    assert it0 == it1
    assert J0 == J1
    np.testing.assert_array_equal(g1, g0)
    np.testing.assert_array_equal(U1, U0)
    # and both are the serial result to the solver's tolerance
    Js, gs = net.loss_and_grad(theta, X, Y)
    assert abs(J1 - Js) <= 1e-10 * abs(Js)
    assert np.linalg.norm(g1 - gs.data) <= 1e-8 * np.linalg.norm(gs.data)


def test_batched_sweeps_with_threads_give_the_same_bits():
    net, theta, X, Y = _net()
    before = lp.get_num_threads()
    out = {}
    try:
        for threads, batched in ((1, False), (2, True)):
            lp.set_num_threads(threads)
            mg = lp.MGRIT(cfactor=4, tol=1e-12, warm_start=False, batch_intervals=batched)
            J, g, _ = net.loss_and_grad(theta, X, Y, solver=mg)
            out[batched] = (J, g.data.copy())
    finally:
        lp.set_num_threads(before)
    assert out[True][0] == out[False][0]
    np.testing.assert_array_equal(out[True][1], out[False][1])


def test_batch_intervals_option_is_checked():
    with pytest.raises(ValueError, match="batch_intervals"):
        lp.MGRIT(batch_intervals="yes")
    assert lp.MGRIT().options()["batch_intervals"] == -1
    assert lp.MGRIT(batch_intervals=True).options()["batch_intervals"] == 1
    assert lp.MGRIT(batch_intervals=True).replace(cfactor=2).batch_intervals is True


def test_user_propagator_runs_batched():
    A = np.array([[0.9, 0.1], [-0.1, 0.95]])
    u0 = np.array([1.0, 2.0])
    ref = lp.solve(lambda level, n, u: A @ u, u0, 29)
    res = lp.solve(lambda level, n, u: A @ u, u0, 29,
                   solver=lp.MGRIT(cfactor=3, tol=1e-13, batch_intervals=True))
    assert res.converged
    np.testing.assert_allclose(res.states()[-1], ref.states()[-1], rtol=1e-11)


@pytest.mark.mpi
@pytest.mark.skipif(not MPI_READY, reason="needs mpiexec and an MPI build")
@pytest.mark.parametrize("ranks", [1, 2])
def test_batched_equals_unbatched_across_ranks(tmp_path, ranks):
    out = tmp_path / "out.npz"
    mpirun(ranks, os.path.join(TESTS, "mpi", "batched_ranks.py"), out, timeout=120)
    d = np.load(out)
    for k in range(int(d["cases"])):
        a, b = f"{k}_0", f"{k}_1"
        assert d[f"batches_{a}"] == 0 and d[f"batches_{b}"] > 0
        assert d[f"it_{a}"] == d[f"it_{b}"]
        assert d[f"J_{a}"] == d[f"J_{b}"]
        np.testing.assert_array_equal(d[f"g_{a}"], d[f"g_{b}"])
        np.testing.assert_array_equal(d[f"U_{a}"], d[f"U_{b}"])


def test_batched_sweeps_in_float32_give_the_unbatched_bits():
    X, Y = lp.datasets.peaks(n=60, seed=3)
    net = lp.ODEResNet(2, 5, 37, 5, T=4.0, activation="tanh", gamma_tik=1e-3, dtype="float32")
    theta = net.init("glorot", seed=2)
    out = {}
    for batched in (False, True):
        mg = lp.MGRIT(cfactor=4, tol=None, rtol=None, max_iter=6, warm_start=False,
                      batch_intervals=batched)
        J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
        assert (info["forward"]["batches"] > 0) == batched
        out[batched] = (J, g.data.copy())
    assert out[True][0] == out[False][0]
    np.testing.assert_array_equal(out[True][1], out[False][1])
