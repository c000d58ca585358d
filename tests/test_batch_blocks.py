"""MGRIT on blocks of the batch (lp.MGRIT(batch_block=...)): with a fixed number
of cycles every block of rows is solved by its own solvers, which must give the
whole batch's numbers (up to the order of sums) and the whole batch's warm
states, on one rank and on several."""

import os

import numpy as np
import pytest

import layerparallel as lp
from conftest import mpi_test, mpirun


def problem(n=203, width=6, layers=12, dtype="float64"):
    X, Y = lp.datasets.peaks(n=n, seed=5)
    net = lp.ODEResNet(2, width, layers, 5, T=3.0, activation="tanh", gamma_tik=1e-3,
                       gamma_ddt=1e-2, gamma_out=1e-3, dtype=dtype)
    return net, net.init("glorot", seed=2), X, Y


def solver(block, **kw):
    opts = dict(cfactor=3, max_levels=3, tol=None, max_iter=2, warm_start=False)
    opts.update(kw)
    return lp.MGRIT(batch_block=block, **opts)


@pytest.mark.parametrize("storage", ["all", "C"])
@pytest.mark.parametrize("levels, cycle", [(1, "V"), (2, "V"), (3, "F")])
def test_blocks_give_the_whole_batch_numbers(storage, levels, cycle):
    net, theta, X, Y = problem()
    out = {}
    for block in (0, 50, 120):
        mg = solver(block, storage=storage, max_levels=levels, cycle=cycle)
        J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
        U, finfo = net.forward(theta, X, solver=mg)
        out[block] = (J, g.data.copy(), U, info, finfo)
        blocks = {0: 1, 50: 4, 120: 1}[block]
        assert net._parallel_model(mg).batch_blocks == blocks
        assert info["forward"]["blocks"] == info["adjoint"]["blocks"] == blocks
    J0, g0, U0, info0, _ = out[0]
    for block in (50, 120):
        J, g, U, info, finfo = out[block]
        assert J == pytest.approx(J0, rel=1e-14)
        np.testing.assert_allclose(g, g0, rtol=0, atol=1e-13 * np.abs(g0).max())
        np.testing.assert_allclose(U, U0, rtol=0, atol=1e-14 * np.abs(U0).max())
        for key in ("forward", "adjoint"):
            assert info[key]["iterations"] == info0[key]["iterations"]
            assert info[key]["steps"] == info0[key]["steps"]  # whole-batch applications
            np.testing.assert_allclose(info[key]["residuals"], info0[key]["residuals"],
                                       rtol=1e-12)


def test_blocks_on_threads_give_one_threads_bits():
    """On one rank the blocks' solves run on the core's threads, one block per
    thread: the same bits as one thread (every block's numbers are its own,
    and the blocks' gradients are added in block order)."""
    net, theta, X, Y = problem(n=403)
    old = lp.get_num_threads()
    out = []
    try:
        for threads in (1, 2, 3, 2, 3):  # repeated: a race shows in some runs only
            lp.set_num_threads(threads)
            for storage in ("all", "C"):
                mg = solver(50, storage=storage, cycle="F")
                J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
                out.append((threads, storage, J, g.data.copy(), info["forward"]["residuals"]))
    finally:
        lp.set_num_threads(old)
    for threads, storage, J, g, res in out[2:]:
        ref = out[0] if storage == "all" else out[1]
        assert J == ref[2] and np.array_equal(g, ref[3]) and res == ref[4]


def test_a_block_that_fails_fails_the_solve():
    """A block whose solve diverges raises lp.MGRITDiverged from the call,
    with the other blocks run on other threads."""
    X, Y = lp.datasets.peaks(n=403, seed=5)
    X[390:] = 1e307  # only the last block's states overflow
    net = lp.ODEResNet(2, 6, 12, 5, T=3.0, activation="relu")
    theta = net.init("he", seed=2)
    old = lp.get_num_threads()
    try:
        for threads in (1, 2):
            lp.set_num_threads(threads)
            with pytest.raises(lp.MGRITDiverged):
                net.loss_and_grad(theta, X, Y, solver=solver(50, max_iter=3))
    finally:
        lp.set_num_threads(old)


def test_blocks_converge_to_serial_propagation_in_float32_too():
    for dtype, tol in (("float64", 1e-12), ("float32", 2e-5)):
        net, theta, X, Y = problem(dtype=dtype)
        J0, g0 = net.loss_and_grad(theta, X, Y)
        J, g, _ = net.loss_and_grad(theta, X, Y, solver=solver(40, max_iter=12))
        assert abs(J - J0) <= tol * abs(J0)
        assert np.linalg.norm(g.data - g0.data) <= tol * 10 * np.linalg.norm(g0.data)


def test_warm_starts_and_warm_states_keep_the_whole_batch_layout():
    """One-shot evaluations (warm-started, changing weights) agree blocked and
    whole, and a blocked model's warm states, loaded into a whole-batch model,
    continue exactly as the blocked one does."""
    net, theta, X, Y = problem()
    mgs = {b: solver(b, max_iter=1, warm_start=True) for b in (0, 60)}
    results = {b: [] for b in mgs}
    for step in range(3):
        th = theta.copy()
        th.data[...] *= 1.0 + 0.05 * step
        for b, mg in mgs.items():
            J, g, info = net.loss_and_grad(th, X, Y, solver=mg)
            results[b].append((J, g.data.copy()))
    for (J0, g0), (J1, g1) in zip(results[0], results[60]):
        assert J1 == pytest.approx(J0, rel=1e-13)
        np.testing.assert_allclose(g1, g0, rtol=0, atol=1e-12 * np.abs(g0).max())
    blocked, whole = net._parallel_model(mgs[60]), net._parallel_model(mgs[0])
    batch, states = blocked.warm_state()
    batch0, states0 = whole.warm_state()
    assert batch == batch0 and states.shape == states0.shape
    np.testing.assert_allclose(states, states0, rtol=0, atol=1e-12 * np.abs(states0).max())
    fresh = solver(0, max_iter=1, warm_start=True, min_coarse=1)  # another model, same cycles
    model = net._parallel_model(fresh)
    net.loss_and_grad(theta, X, Y, solver=fresh)  # sizes it for the batch
    model.set_warm_state(batch, states)
    blocked.set_warm_state(batch, states)
    J_a, g_a, _ = net.loss_and_grad(theta, X, Y, solver=fresh)
    J_b, g_b, _ = net.loss_and_grad(theta, X, Y, solver=mgs[60])
    assert J_a == pytest.approx(J_b, rel=1e-13)
    np.testing.assert_allclose(g_a.data, g_b.data, rtol=0, atol=1e-12 * np.abs(g_b.data).max())


def test_the_default_blocks_fixed_cycle_solves_of_narrow_nets_only():
    from layerparallel import _core

    rows = max(256, _core.cache_bytes(2) // (8 * 8 * 8))
    n = 2 * rows + 10
    X, Y = lp.datasets.peaks(n=n, seed=1)
    narrow = lp.ODEResNet(2, 8, 8, 5)
    theta = narrow.init("he", seed=0)
    fixed = lp.MGRIT(cfactor=2, tol=None, max_iter=1)
    narrow.loss_and_grad(theta, X, Y, solver=fixed)
    assert narrow._parallel_model(fixed).batch_blocks == 2
    tolerance = lp.MGRIT(cfactor=2, tol=1e-8)
    narrow.loss_and_grad(theta, X, Y, solver=tolerance)
    assert narrow._parallel_model(tolerance).batch_blocks == 1
    wide = lp.ODEResNet(2, 64, 4, 5)
    wide.loss_and_grad(wide.init("he", seed=0), X[:600], Y[:600], solver=fixed)
    assert wide._parallel_model(fixed).batch_blocks == 1


def test_bad_batch_block_values_are_refused():
    for bad in (-1, 2.5, True, "auto"):
        with pytest.raises(ValueError, match="batch_block"):
            lp.MGRIT(tol=None, batch_block=bad)
    with pytest.raises(ValueError, match="fixed number of cycles"):
        lp.MGRIT(tol=1e-8, batch_block=100)
    with pytest.raises(ValueError, match="fixed number of cycles"):
        lp.MGRIT(tol=None, rtol=1e-3, batch_block=100)
    mg = lp.MGRIT(tol=None, batch_block=100)
    assert mg.replace(tol=1e-6).batch_block is None  # a tolerance: the whole batch
    assert mg.replace(max_iter=3).batch_block == 100


@mpi_test
@pytest.mark.parametrize("ranks", [2, 3])
def test_blocks_on_several_ranks(tmp_path, ranks):
    out = tmp_path / "out.npz"
    mpirun(ranks, os.path.join(os.path.dirname(__file__), "mpi", "blocks_ranks.py"), out)
    d = np.load(out)
    net, theta, X, Y = problem(n=150, layers=13)
    J0, g0, _ = net.loss_and_grad(theta, X, Y, solver=solver(0, max_iter=2))
    for key in ("whole", "blocked"):
        assert d[f"J_{key}"] == pytest.approx(J0, rel=1e-13)
        np.testing.assert_allclose(d[f"g_{key}"], g0.data, rtol=0,
                                   atol=1e-12 * np.abs(g0.data).max())
