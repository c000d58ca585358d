"""Domain-decomposition training on one rank: the parameter decomposition against
its definition, the trust-region method and SAPTS, the process grid's checks."""

import math

import numpy as np
import pytest

import layerparallel as lp
from layerparallel.dd.trust_region import update_radius


def small_problem(gamma_ddt=1e-3, head="regression"):
    if head == "regression":
        X, Y = lp.datasets.sine(n=80, seed=0)
        net = lp.ODEResNet(1, 6, 6, 1, T=1.0, activation="tanh", head=head, gamma_tik=1e-4,
                           gamma_ddt=gamma_ddt)
    else:
        X, Y = lp.datasets.peaks(n=90, seed=1)
        net = lp.ODEResNet(2, 5, 6, 5, T=2.0, activation="tanh", gamma_tik=1e-4,
                           gamma_ddt=gamma_ddt)
    return net, X, Y


def test_one_subdomain_is_the_local_optimizer_then_an_lbfgs_step():
    net, X, Y = small_problem()
    theta = net.init("glorot", seed=1)
    pd = lp.dd.ParameterDecomposition("adam", 3, subdomains=1, local_lr=0.01)
    hist = lp.train(net, theta, X, Y, pd, iterations=4)
    # the definition, written out: 3 Adam steps on J, then an L-BFGS line-search step
    ref = net.init("glorot", seed=1)
    adam, lbfgs = lp.optim.Adam(lr=0.01), lp.optim.LBFGS(memory=5)
    closure = lambda th: net.loss_and_grad(th, X, Y)  # noqa: E731
    losses = []
    for _ in range(4):
        J, g = closure(ref)
        losses.append(J)
        for _ in range(3):
            adam.step(ref, J, g)
            J, g = closure(ref)
        assert J <= losses[-1]  # the preconditioned iterate is taken undamped
        lbfgs.step(ref, J, g, closure)
    np.testing.assert_allclose(hist["loss"], losses, rtol=1e-11)
    np.testing.assert_allclose(theta.data, ref.data, rtol=0, atol=1e-11)


def test_zero_local_steps_is_plain_lbfgs():
    net, X, Y = small_problem(head="classification")
    a, b = net.init("glorot", seed=2), net.init("glorot", seed=2)
    ha = lp.train(net, a, X, Y, lp.dd.ParameterDecomposition("adam", 0, memory=4), iterations=8)
    hb = lp.train(net, b, X, Y, lp.optim.LBFGS(memory=4), iterations=8)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12)


def test_one_gradient_step_per_subdomain_does_not_depend_on_the_split():
    # the local objectives are first-order consistent: their first step is a global gradient step
    net, X, Y = small_problem()
    runs = []
    for S in (1, 2, 3, 6):
        theta = net.init("glorot", seed=3)
        lp.train(net, theta, X, Y, lp.dd.ParameterDecomposition("gd", 1, subdomains=S,
                                                                local_lr=0.05), iterations=3)
        runs.append(theta.data)
    for r in runs[1:]:
        np.testing.assert_allclose(r, runs[0], rtol=0, atol=1e-12)


@pytest.mark.parametrize("head", ["regression", "classification"])
def test_subdomains_see_the_global_states_and_adjoints(head):
    """Without cross-subdomain regularization the local gradient at the start equals
    the global one with no correction (u_a and lambda_b are right), and the last
    subdomain's local loss is the global loss of its layers and head."""
    net, X, Y = small_problem(gamma_ddt=0.0, head=head)
    theta = net.init("glorot", seed=4)
    pd = lp.dd.ParameterDecomposition("gd", 1, subdomains=3)
    solver = pd.bind(net)
    J, g = net.loss_and_grad(theta, X, Y, solver=solver)[:2]
    model = net._parallel_model(solver)
    for sd in pd._blocks:
        p0, x0, local = pd._local_problem(sd, theta, model, X, Y, None, 1.0)
        L0, gL = local(x0)
        block = sd.block_of(g)
        assert np.linalg.norm(gL - block) <= 1e-12 * np.linalg.norm(block)
    sd = pd._blocks[-1]
    p0, x0, local = pd._local_problem(sd, theta, model, X, Y, None, 1.0)
    dx = 0.05 * np.random.default_rng(0).standard_normal(x0.size)
    moved = theta.copy()
    p = p0.copy()
    p.data[:sd.size] = x0 + dx
    sd.insert(p, moved)
    assert local(x0 + dx)[0] - local(x0)[0] == pytest.approx(
        net.loss(moved, X, Y) - net.loss(theta, X, Y), rel=1e-10)


def test_parameter_decomposition_trains():
    net, X, Y = small_problem()
    for local in ("gd", "adam", "lbfgs"):
        theta = net.init("glorot", seed=1)
        h = lp.train(net, theta, X, Y, lp.dd.ParameterDecomposition(local, 4, subdomains=3),
                     iterations=6)
        assert h["loss"][-1] < 0.5 * h["loss"][0]


# ---------------------------------------------------------------- trust regions

@pytest.mark.parametrize("rho, norm, accepted, expected", [
    (-1.0, 1.0, False, 0.25),     # rejected: shrink
    (0.1, 1.0, True, 0.25),       # accepted but poor: shrink
    (0.5, 1.0, True, 1.0),        # fair: keep
    (0.9, 1.0, True, 2.0),        # very good on the boundary: expand
    (0.9, 0.5, True, 1.0),        # very good inside: keep
    (0.9, 0.95, True, 2.0),       # 0.9 of the radius counts as the boundary
])
def test_radius_rules(rho, norm, accepted, expected):
    assert update_radius(1.0, rho, norm, accepted) == expected
    assert update_radius(6.0, 0.9, 6.0, True, max_radius=10.0) == 10.0


def quadratic(A, b):
    def f(x):
        return 0.5 * x @ A @ x - b @ x, A @ x - b
    return f


@pytest.mark.parametrize("model", ["lsr1", "lbfgs"])
@pytest.mark.parametrize("subproblem", ["steihaug", "cauchy"])
def test_trust_region_minimizes_a_quadratic(model, subproblem):
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((8, 8))
    A = Q @ Q.T + 0.5 * np.eye(8)
    f = quadratic(A, rng.standard_normal(8))
    x = np.zeros(8)
    tr = lp.dd.TrustRegion(radius=0.5, model=model, subproblem=subproblem, memory=8)
    J, g = f(x)
    J0 = J
    fstar = f(np.linalg.solve(A, f(np.zeros(8))[1] * -1))[0]
    for _ in range(200 if subproblem == "cauchy" else 60):
        info = tr.step(x, J, g, f)
        J, g = info["loss"], info["grad"]
    assert J - fstar <= 1e-3 * (J0 - fstar)


def test_trust_region_rejects_a_step_that_raises_the_loss():
    x = np.array([1.0, -2.0])
    tr = lp.dd.TrustRegion(radius=1.0)
    info = tr.step(x, 1.0, np.array([1.0, 1.0]), lambda th: (1.5, np.array([1.0, 1.0])))
    assert not info["accepted"] and np.array_equal(x, [1.0, -2.0])
    assert info["radius"] == 0.25 and info["loss"] == 1.0


def test_sapts_never_accepts_a_rise_and_its_radius_follows_the_rules():
    net, X, Y = small_problem(head="classification")
    theta = net.init("glorot", seed=5)
    sapts = lp.dd.DataDecomposition(2, micro_batches=3, radius=3.0, max_radius=50.0)
    sapts.bind(net)
    seen = set()
    for k in range(12):
        J = net.loss(theta, X, Y)
        before, radius = theta.data.copy(), sapts.radius
        info = sapts.step(theta, J, None, batch=(X, Y))
        after = net.loss(theta, X, Y)
        seen.add(info["accepted"])
        if info["accepted"]:
            assert after < J
            assert info["rho"] == pytest.approx((J - after) / info["predicted"], rel=1e-10)
        else:
            assert np.array_equal(theta.data, before)
        assert sapts.radius == update_radius(radius, info["rho"], info["step_size"],
                                             info["accepted"], max_radius=50.0)
        assert np.linalg.norm(theta.data - before) <= radius * (1 + 1e-12)
    assert seen == {True, False}


@pytest.mark.parametrize("batch_size", [None, 40])
def test_sapts_with_one_micro_batch_and_one_step_is_the_trust_region_method(batch_size):
    net, X, Y = small_problem(head="classification")
    a, b = net.init("glorot", seed=6), net.init("glorot", seed=6)
    opts = dict(radius=0.3, model="lbfgs", subproblem="steihaug", memory=4)
    ha = lp.train(net, a, X, Y, lp.dd.DataDecomposition(1, **opts), iterations=10,
                  batch_size=batch_size)
    hb = lp.train(net, b, X, Y, lp.dd.TrustRegion(**opts), iterations=10, batch_size=batch_size)
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-12)


# ---------------------------------------------------------------- bad options

@pytest.mark.parametrize("make, match", [
    (lambda: lp.dd.ParameterDecomposition("adam", -1), "local_steps"),
    (lambda: lp.dd.ParameterDecomposition("nope", 2), "optimizer"),
    (lambda: lp.dd.ParameterDecomposition("adam", 2, proximal=0.0), "proximal"),
    (lambda: lp.dd.DataDecomposition(0), "local_steps"),
    (lambda: lp.dd.DataDecomposition(2, radius=0.0), "radius"),
    (lambda: lp.dd.DataDecomposition(2, radius=-1.0), "radius"),
    (lambda: lp.dd.TrustRegion(radius=2.0, max_radius=1.0), "max_radius"),
    (lambda: lp.dd.TrustRegion(model="bfgs"), "model"),
    (lambda: lp.dd.TrustRegion(low=0.8, high=0.5), "low"),
    (lambda: lp.ProcessGrid(None, layers=2), "layers=2 does not divide the 1 ranks"),
    (lambda: lp.ProcessGrid(None, layers=1, data=0), "data"),
])
def test_bad_options_are_value_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_more_subdomains_than_layers_fails_before_any_evaluation():
    net, X, Y = small_problem()
    theta = net.init("glorot", seed=0)
    calls = []
    with pytest.raises(ValueError, match="more than the 6 layers"):
        lp.train(net, theta, X, Y, lp.dd.ParameterDecomposition("adam", 2, subdomains=7),
                 iterations=2, callback=lambda *a: calls.append(a))
    assert calls == []


def test_a_one_rank_grid_is_the_plain_network():
    grid = lp.ProcessGrid(None)
    assert grid.shape == (1, 1) and grid.rows(10) == slice(0, 10)
    net = grid.network(2, 4, 3, 5)
    assert isinstance(net, lp.ODEResNet) and not net.distributed
    assert math.isclose(lp.optim.norm(net.init("box")), net.init("box").norm())


@pytest.mark.parametrize("flags, message", [
    (["--grid", "3x2"], "a 3x2 grid needs 6 ranks, running on 1"),
    (["--data-ranks", "2"], "--data-ranks 2 does not divide the 1 ranks"),
    (["--method", "dd-params", "--local-steps", "-1"], "--local-steps"),
    (["--method", "dd-data", "--radius", "0"], "--radius"),
    (["--method", "dd-params", "--subdomains", "9"], "--subdomains 9 is more than the 8 layers"),
    (["--method", "dd-data", "--local-steps", "0"], "--local-steps must be >= 1"),
    (["--method", "serial", "--mgrit"], "contradicts"),
    (["--method", "dd-params", "--lsgd"], "neither --nested nor --lsgd"),
])
def test_cli_rejects_bad_decomposition_flags(capsys, flags, message):
    from layerparallel.cli import main

    status = main(["train", "--layers", "8", "--iterations", "1", "--no-progress", *flags])
    assert status == 2
    assert message in capsys.readouterr().err


def test_cli_trains_with_each_method(tmp_path):
    from layerparallel.cli import main

    for method in ("serial", "mgrit", "dd-params", "dd-data"):
        log = tmp_path / f"{method}.jsonl"
        assert main(["train", "--problem", "sine", "--samples", "100", "--layers", "4",
                     "--iterations", "3", "--no-progress", "--method", method,
                     "--log", str(log)]) == 0
        assert len(log.read_text().splitlines()) == 3


def test_consistent_micro_batch_problems_start_with_the_mini_batch_gradient():
    # empty models (B = I) and one Cauchy step each: every micro-batch takes the
    # mini-batch's steepest-descent step, so the average is the trust-region step
    net, X, Y = small_problem(head="classification")
    a, b = net.init("glorot", seed=7), net.init("glorot", seed=7)
    opts = dict(radius=0.2, subproblem="cauchy")
    sapts = lp.dd.DataDecomposition(1, micro_batches=3, **opts)
    ha = lp.train(net, a, X, Y, sapts, iterations=1)
    hb = lp.train(net, b, X, Y, lp.dd.TrustRegion(**opts), iterations=1)
    np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-13)
    assert sapts.radius == 0.4 and ha["loss"] == hb["loss"]
