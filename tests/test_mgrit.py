"""MGRIT across layers against serial propagation, on one rank."""

import numpy as np
import pytest

import layerparallel as lp


def problem(N, activation="tanh", width=6, n=60, **gammas):
    X, Y = lp.datasets.peaks(n=n, seed=4)
    net = lp.ODEResNet(2, width, N, 5, T=4.0, activation=activation, **gammas)
    return net, net.init("glorot", seed=3), X, Y


def rel(a, b):
    return np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-300)


def test_one_level_is_serial_propagation_exactly():
    net, theta, X, Y = problem(23, gamma_tik=1e-3, gamma_ddt=1e-3)
    J0, g0 = net.loss_and_grad(theta, X, Y)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=lp.MGRIT(max_levels=1))
    assert J == J0
    assert np.array_equal(g.data, g0.data)
    assert np.array_equal(net.forward(theta, X, solver=lp.MGRIT(max_levels=1))[0],
                          net.forward(theta, X))
    assert info["forward"]["residuals"] == [0.0]


@pytest.mark.parametrize("cfactor", [2, 4, 8])
@pytest.mark.parametrize("cycle", ["V", "F"])
@pytest.mark.parametrize("storage", ["all", "C"])
def test_converged_mgrit_matches_serial(cfactor, cycle, storage):
    N = 61  # divisible by no cfactor
    net, theta, X, Y = problem(N, gamma_tik=1e-3, gamma_ddt=1e-3, gamma_out=1e-3)
    J0, g0 = net.loss_and_grad(theta, X, Y)
    mg = lp.MGRIT(cfactor=cfactor, cycle=cycle, storage=storage, tol=1e-11, max_iter=60,
                  warm_start=False)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["converged"] and info["adjoint"]["converged"]
    assert info["forward"]["iterations"] >= 1
    assert abs(J - J0) <= 1e-9 * abs(J0)
    assert rel(g.data, g0.data) <= 1e-9
    for name in ("W", "b", "W_in", "W_out"):
        assert rel(getattr(g, name), getattr(g0, name)) <= 1e-9, name
    U, _ = net.forward(theta, X, solver=mg)
    assert rel(U, net.forward(theta, X)) <= 1e-9


@pytest.mark.parametrize("activation", ["relu", "smoothrelu"])
def test_every_activation_converges_to_serial(activation):
    net, theta, X, Y = problem(40, activation=activation)
    J0, g0 = net.loss_and_grad(theta, X, Y)
    J, g, _ = net.loss_and_grad(theta, X, Y, solver=lp.MGRIT(cfactor=4, tol=1e-12))
    assert abs(J - J0) <= 1e-9 * abs(J0) and rel(g.data, g0.data) <= 1e-9


def test_f_relaxation_two_level_is_exact_after_N_over_c_iterations():
    # Parareal's property: each iteration makes one more coarse interval exact.
    N, c = 48, 4
    net, theta, X, Y = problem(N)
    U0 = net.forward(theta, X)
    errors = []
    for its in range(N // c - 2, N // c + 1):
        mg = lp.MGRIT(cfactor=c, max_levels=2, relax="F", tol=None, max_iter=its,
                      warm_start=False)
        U, info = net.forward(theta, X, solver=mg)
        assert info["iterations"] == its
        errors.append(rel(U, U0))
    assert errors[0] > 1e-10  # not yet exact two iterations before
    assert errors[-1] <= 1e-13


def test_fixed_iteration_mode_runs_exactly_max_iter_cycles():
    net, theta, X, Y = problem(32)
    mg = lp.MGRIT(cfactor=2, tol=None, max_iter=2)
    _, _, info = net.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["iterations"] == 2 and len(info["forward"]["residuals"]) == 2
    assert info["adjoint"]["iterations"] == 2


def test_relative_tolerance_and_residual_history():
    net, theta, X, Y = problem(64)
    mg = lp.MGRIT(cfactor=2, tol=None, rtol=1e-6, max_iter=50, warm_start=False)
    U, info = net.forward(theta, X, solver=mg)
    r = info["residuals"]
    assert info["converged"] and r[-1] <= 1e-6 * r[0] and all(x > 1e-6 * r[0] for x in r[:-1])
    assert info["rho"] == pytest.approx((r[-1] / r[0]) ** (1 / (len(r) - 1)))
    assert 0.0 < info["rho"] < 1.0


def test_warm_start_needs_fewer_iterations():
    net, theta, X, Y = problem(64)
    mg = lp.MGRIT(cfactor=4, tol=1e-10, warm_start=True)
    _, _, cold = net.loss_and_grad(theta, X, Y, solver=mg)
    theta.data[...] *= 1.0 + 1e-6  # a small optimizer step
    _, _, warm = net.loss_and_grad(theta, X, Y, solver=mg)
    assert warm["forward"]["iterations"] < cold["forward"]["iterations"]


@pytest.mark.slow
def test_iterations_stay_flat_as_layers_grow():
    """Peaks-sized net, FCF, c = 4, fixed tolerance: N = 64 .. 1024."""
    X, Y = lp.datasets.peaks(n=100, seed=0)
    counts = {}
    for N in (64, 128, 256, 512, 1024):
        net = lp.ODEResNet(2, 8, N, 5, T=5.0, activation="smoothrelu")
        theta = net.init("box", seed=0)
        mg = lp.MGRIT(cfactor=4, relax="FCF", tol=None, rtol=1e-8, max_iter=60,
                      warm_start=False)
        _, _, info = net.loss_and_grad(theta, X, Y, solver=mg)
        counts[N] = (info["forward"]["iterations"], info["adjoint"]["iterations"])
    for f, a in counts.values():
        assert f <= counts[64][0] + 2 and a <= counts[64][1] + 2, counts


@pytest.mark.parametrize("kwargs, name", [
    ({"cfactor": 1}, "cfactor"), ({"cfactor": [4, 1]}, "cfactor"), ({"cfactor": 2.5}, "cfactor"),
    ({"max_levels": 0}, "max_levels"), ({"min_coarse": 0}, "min_coarse"),
    ({"tol": 0.0}, "tol"), ({"tol": -1e-3}, "tol"), ({"tol": float("nan")}, "tol"),
    ({"rtol": 1.5}, "rtol"), ({"cycle": "W"}, "cycle"), ({"relax": "CF"}, "relax"),
    ({"relax": "FF"}, "relax"), ({"max_iter": -1}, "max_iter"), ({"storage": "some"}, "storage"),
    ({"divergence": 0.5}, "divergence"), ({"comm": "world"}, "comm"),
])
def test_bad_options_are_value_errors(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lp.MGRIT(**kwargs)


def test_solver_must_be_mgrit():
    net, theta, X, Y = problem(8)
    with pytest.raises(ValueError, match="solver"):
        net.loss_and_grad(theta, X, Y, solver="mgrit")


def test_diverging_solve_raises():
    # sigma's scale is huge: the coarse steps (h c^l) overshoot and MGRIT blows up.
    X, Y = lp.datasets.peaks(n=20, seed=0)
    net = lp.ODEResNet(2, 4, 64, 5, T=64.0, activation="relu")
    theta = net.init("he", seed=0)
    theta.W[...] *= 3.0
    with pytest.raises(lp.MGRITDiverged):
        net.forward(theta, X, solver=lp.MGRIT(cfactor=8, tol=1e-12, divergence=10.0))


# ---- user propagators -------------------------------------------------------

A = np.array([[0.9, 0.2], [-0.3, 0.8]])


def linear_phi(level, step, w):
    return np.linalg.matrix_power(A, 1) @ w if level == 0 else (np.eye(2) + 2**level * (A - np.eye(2))) @ w


@pytest.mark.parametrize("cycle", ["V", "F"])
def test_python_propagator_converges_to_serial(cycle):
    N = 45
    res = lp.solve(linear_phi, np.array([1.0, -1.0]), N,
                   lp.MGRIT(cfactor=3, cycle=cycle, tol=1e-13))
    exact = np.linalg.matrix_power(A, N) @ np.array([1.0, -1.0])
    assert res.converged and res.iterations >= 2
    np.testing.assert_allclose(res.state(N), exact, rtol=1e-11)
    assert res.states().shape == (N + 1, 2) and 0.0 < res.rho < 1.0


def test_python_propagator_serial_and_errors():
    res = lp.solve(linear_phi, [1.0, 0.0], 10)
    np.testing.assert_allclose(res.state(10), np.linalg.matrix_power(A, 10) @ [1.0, 0.0])
    with pytest.raises(ValueError, match="phi"):
        lp.solve("not callable", [1.0], 3)
    with pytest.raises(ValueError, match="n_steps"):
        lp.solve(linear_phi, [1.0, 0.0], 0)

    def boom(level, step, w):
        if step == 7:
            raise KeyError("boom at 7")
        return w

    with pytest.raises(KeyError, match="boom"):
        lp.solve(boom, np.ones(3), 20, lp.MGRIT(cfactor=2))
    with pytest.raises(ValueError, match="length 3"):
        lp.solve(lambda l, i, w: w[:2], np.ones(3), 5)


def test_check_propagator_reports_each_problem():
    assert lp.check_propagator(linear_phi, np.ones(2)) == []
    rng = np.random.default_rng(0)
    found = " ".join(lp.check_propagator(lambda l, i, w: w + rng.random(2), np.ones(2)))
    assert "deterministic" in found
    assert "shape" in " ".join(lp.check_propagator(lambda l, i, w: w[:1], np.ones(2)))
    nan = lp.check_propagator(lambda l, i, w: w * np.nan, np.ones(2))
    assert "NaN" in " ".join(nan) and "deterministic" not in " ".join(nan), nan
    assert "dtype" in " ".join(lp.check_propagator(lambda l, i, w: w.astype(np.float32),
                                                   np.ones(2)))
    assert "numpy array" in " ".join(lp.check_propagator(lambda l, i, w: list(w), np.ones(2)))

    def inplace(level, step, w):
        w *= 2.0
        return w

    assert "in place" in " ".join(lp.check_propagator(inplace, np.ones(2)))
    assert "raised" in " ".join(lp.check_propagator(lambda l, i, w: 1 / 0, np.ones(2)))
    assert "callable" in " ".join(lp.check_propagator(3, np.ones(2)))


def test_critical_path_model():
    from layerparallel.mgrit import critical_path, potential_speedup

    # Two levels, c = 2, FCF: 3 (FCF) + 2 (residual) + 1 (interpolation) + 4 (coarsest).
    assert critical_path(8, cfactor=2, max_levels=2) == (10, 2)
    # F-relaxation only: 2 + 1 + 4.
    assert critical_path(8, cfactor=2, max_levels=2, relax="F") == (8, 2)
    # One level is serial propagation.
    assert critical_path(100, max_levels=1) == (100, 1)
    # V-cycle over 1024 = 4^5 with min_coarse 2: levels 1024 256 64 16 4 1 -> stops at 4? 4 > 2 -> 1.
    v, levels = critical_path(1024, cfactor=4)
    assert levels == 6 and v == 5 * 12 + 1
    f, _ = critical_path(1024, cfactor=4, cycle="F")
    assert f > v
    assert potential_speedup(1024, 5, cfactor=4) == pytest.approx(1024 / (5 * 61))


def test_skip_first_down_start_converges_to_serial():
    net, theta, X, Y = problem(50)
    U0 = net.forward(theta, X)
    U, info = net.forward(theta, X, solver=lp.MGRIT(cfactor=4, tol=1e-11,
                                                    skip_first_down=True, warm_start=False))
    assert info["converged"] and rel(U, U0) <= 1e-9
    res = lp.solve(linear_phi, np.array([1.0, -1.0]), 40,
                   lp.MGRIT(cfactor=2, tol=1e-13, skip_first_down=True))
    np.testing.assert_allclose(res.state(40), np.linalg.matrix_power(A, 40) @ [1.0, -1.0],
                               rtol=1e-11)


# ---- conventions and speedup models -------------------------------------------

def test_hierarchy_is_the_engines():
    from layerparallel.mgrit import hierarchy

    h = hierarchy(100, cfactor=2, min_coarse=10)
    assert h["intervals"] == [100, 50, 25, 12, 6]
    assert h["cfactor"] == [2, 2, 2, 2, 1] and h["stride"] == [1, 2, 4, 8, 16]
    res = lp.solve(linear_phi, np.array([1.0, -1.0]), 100,
                   lp.MGRIT(cfactor=2, min_coarse=10, tol=1e-12))
    assert res._engine.levels == len(h["intervals"])
    assert hierarchy(7, cfactor=[2, 3], max_levels=3)["intervals"] == [7, 3, 1]


@pytest.mark.parametrize("cycle", ["V", "F"])
def test_xbraid_conventions_count_the_start_cycle(cycle):
    u0 = np.array([1.0, -1.0])
    exact = np.linalg.matrix_power(A, 64) @ u0
    runs = {}
    for conv in ("package", "xbraid"):
        for skip in (False, True):
            mg = lp.MGRIT(cfactor=2, max_levels=4, tol=1e-14, cycle=cycle, conventions=conv,
                          skip_first_down=skip)
            res = lp.solve(linear_phi, u0, 64, mg)
            np.testing.assert_allclose(res.state(64), exact, rtol=1e-8)
            runs[conv, skip] = res
    # Without the skip both conventions compute the same residuals; XBraid also
    # runs (and counts) the cycle after the last one.
    assert runs["package", False].residuals == runs["xbraid", False].residuals
    assert runs["package", False].iterations == len(runs["package", False].residuals) - 1
    assert runs["xbraid", False].iterations == len(runs["xbraid", False].residuals)
    # With it, XBraid's start counts too.
    assert runs["package", True].iterations == len(runs["package", True].residuals) - 1
    assert runs["xbraid", True].iterations == len(runs["xbraid", True].residuals) + 1
    if cycle == "V":  # the same start for V-cycles
        assert runs["package", True].residuals == runs["xbraid", True].residuals
    r = runs["xbraid", True].residuals
    k = runs["xbraid", True].iterations
    assert runs["xbraid", True].rho == pytest.approx((r[-1] / r[0]) ** (1 / k))
    # The skip is XBraid's default under its conventions.
    assert lp.MGRIT(conventions="xbraid").skip_first_down
    assert not lp.MGRIT().skip_first_down
    with pytest.raises(ValueError, match="conventions"):
        lp.MGRIT(conventions="braid")


def test_xbraid_max_iter_counts_the_start():
    u0 = np.array([1.0, -1.0])
    for cycle in ("V", "F"):
        res = lp.solve(linear_phi, u0, 64, lp.MGRIT(cfactor=2, max_levels=4, tol=1e-30,
                                                    max_iter=4, cycle=cycle,
                                                    conventions="xbraid"))
        # the start and 3 cycles, each after its residual, as XBraid's max_iter
        assert res.iterations == 4 and len(res.residuals) == 3 and not res.converged


def test_paper_speedup_model():
    from layerparallel.mgrit import critical_path, potential_speedup

    # 100 steps, c = 2, coarsest <= 10: levels 100 50 25 12 6 (L = 5).
    assert critical_path(100, cfactor=2, min_coarse=10, model="paper") == (17 + 8 * 3, 5)
    # F: V-cycles starting on levels 1, 2, 3 (4, 3, 2 levels): 33 + 25 + 17.
    assert critical_path(100, cfactor=2, min_coarse=10, cycle="F", model="paper") == (75, 5)
    assert critical_path(100, cfactor=2, max_levels=2, cycle="F", model="paper") == (17, 2)
    assert potential_speedup(100, 6, cfactor=2, min_coarse=10, model="paper") == \
        pytest.approx(100 / (6 * 41))
    with pytest.raises(ValueError, match="cfactor 2 and FCF"):
        critical_path(100, cfactor=4, model="paper")
    with pytest.raises(ValueError, match="model"):
        critical_path(100, model="amdahl")


@pytest.mark.parametrize("conventions", ["package", "xbraid"])
def test_training_history_counts_like_the_solver(conventions):
    net, theta, X, Y = problem(32)
    mg = lp.MGRIT(cfactor=2, tol=1e-10, warm_start=False, conventions=conventions,
                  skip_first_down=False)
    _, _, info = net.loss_and_grad(theta.copy(), X, Y, solver=mg)
    h = lp.train(net, theta, X, Y, lp.optim.GD(lr=1e-3), iterations=1, solver=mg)
    assert h["mgrit_forward_iterations"][0] == info["forward"]["iterations"]
    assert h["mgrit_adjoint_iterations"][0] == info["adjoint"]["iterations"]
    n_res = len(info["forward"]["residuals"])
    assert info["forward"]["iterations"] == (n_res if conventions == "xbraid" else n_res - 1)


@pytest.mark.parametrize("conventions", ["package", "xbraid"])
def test_one_shot_history_counts_like_the_solver(conventions):
    # One-shot training (d warm-started cycles per gradient; under XBraid's
    # conventions its start on the first, cold, solve): every recorded count is
    # the solver's own count for the same solves, replayed on a fresh network.
    net, theta, X, Y = problem(32)
    d, lr, steps = 2, 1e-3, 3
    mg = lp.MGRIT(cfactor=2, conventions=conventions)
    trained = theta.copy()
    h = lp.train(net, trained, X, Y, lp.optim.GD(lr=lr), iterations=steps, solver=mg,
                 one_shot=d, adaptive_one_shot=False)
    replay_net, _, _, _ = problem(32)
    replay = mg.replace(tol=None, rtol=None, max_iter=d, warm_start=True)
    th = theta.copy()
    for k in range(steps):
        _, g, info = replay_net.loss_and_grad(th, X, Y, solver=replay)
        assert h["mgrit_forward_iterations"][k] == info["forward"]["iterations"] == d
        assert h["mgrit_adjoint_iterations"][k] == info["adjoint"]["iterations"] == d
        # under XBraid's conventions the cold first solve's start is one of the d
        n_res = len(info["forward"]["residuals"])
        assert n_res == (d - 1 if conventions == "xbraid" and k == 0 else d)
        th.data[...] -= lr * g.data
    np.testing.assert_allclose(th.data, trained.data, rtol=0, atol=1e-14)


def test_propagator_result_repr():
    res = lp.solve(linear_phi, np.ones(2), 16, solver=lp.MGRIT(cfactor=2, tol=1e-12))
    text = repr(res)
    assert text.startswith("PropagatorResult(n_steps=16, ")
    assert f"iterations={res.iterations}" in text and "converged=True" in text
