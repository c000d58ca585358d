"""Optimizers: GD, SGD, Adam, L-BFGS on arrays and lp.Params."""

import textwrap

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import optim

from conftest import mpi_test, mpirun


# ----------------------------------------------------------------------------- problems

def rosenbrock(x):
    a, b = x
    r = b - a * a
    return (1 - a) ** 2 + 100 * r * r, np.array([-2 * (1 - a) - 400 * a * r, 200 * r])


def make_quadratic(n=50, cond=1e3, seed=0):
    """f(x) = 1/2 (x - x*)^T A (x - x*), eigenvalues of A log-spaced in [1/cond, 1]."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * np.logspace(0, -np.log10(cond), n)) @ Q.T
    A = 0.5 * (A + A.T)
    x_star = rng.standard_normal(n)

    def f(x):
        e = x - x_star
        Ae = A @ e
        return 0.5 * e @ Ae, Ae

    return f, x_star


def run(opt, fun, x, iterations, gtol=0.0):
    """Drive opt the way a training loop does; returns (x, loss, grad, infos)."""
    J, g = fun(x)
    infos = []
    for _ in range(iterations):
        info = opt.step(x, J, g, fun)
        infos.append(info)
        if info["grad"] is not None:
            J, g = info["loss"], info["grad"]
        else:
            J, g = fun(x)
        if np.linalg.norm(g) <= gtol:
            break
    return x, J, g, infos


# ----------------------------------------------------------------------------- L-BFGS

def test_lbfgs_rosenbrock():
    x, J, g, infos = run(optim.LBFGS(memory=5), rosenbrock, np.array([-1.2, 1.0]), 100, 1e-12)
    assert np.linalg.norm(x - 1.0) <= 1e-8
    assert np.linalg.norm(rosenbrock(x)[1]) <= 1e-8
    assert len(infos) <= 60
    assert not any(i["line_search_failed"] for i in infos)
    # the returned loss and gradient are those at the returned point
    J2, g2 = rosenbrock(x)
    assert J == J2 and np.array_equal(g, g2)


@pytest.mark.parametrize("memory", [5, 10])
def test_lbfgs_ill_conditioned_quadratic(memory):
    f, x_star = make_quadratic()
    x, J, g, infos = run(optim.LBFGS(memory=memory), f, np.zeros(50), 600, 1e-12)
    assert np.linalg.norm(x - x_star) <= 1e-8
    assert np.linalg.norm(f(x)[1]) <= 1e-8
    assert sum(i["evaluations"] for i in infos) <= 1.2 * len(infos)  # unit steps mostly accepted
    # monotone decrease (Armijo)
    losses = [i["loss"] for i in infos]
    assert all(b <= a for a, b in zip(losses, losses[1:]))


def test_lbfgs_line_search_failure_leaves_x_unchanged():
    opt = optim.LBFGS(memory=3, max_backtracks=4)
    f, _ = make_quadratic(n=5, seed=1)
    x = np.zeros(5)
    run(opt, f, x, 3)
    assert opt.state_dict()["S"].shape[0] == 3
    x0 = x.copy()
    J, g = f(x)
    calls = []

    def bad(theta):
        calls.append(theta.copy())
        return np.inf, np.zeros_like(theta)

    info = opt.step(x, J, g, bad)
    assert info["line_search_failed"] and info["memory_reset"]
    assert info["evaluations"] == len(calls) == 5
    assert info["step_size"] == 0.0 and info["loss"] == J and info["grad"] is g
    assert np.array_equal(x, x0)
    assert opt.state_dict()["S"].shape[0] == 0
    # NaN losses are rejected too, and the caller's x still does not move
    info = opt.step(x, J, g, lambda th: (np.nan, np.zeros_like(th)))
    assert info["line_search_failed"] and np.array_equal(x, x0)


def test_lbfgs_curvature_safeguard():
    # Along a concave direction s^T y < 0: the pair is skipped, x still moves.
    def concave(x):
        return -0.5 * x @ x, -x

    opt = optim.LBFGS()
    x = np.array([1.0, 2.0])
    J, g = concave(x)
    info = opt.step(x, J, g, concave)
    assert info["skipped_update"] and info["memory"] == 0 and info["step_size"] > 0
    assert np.linalg.norm(x) > np.sqrt(5.0)
    # Linear function: y = 0, s^T y = 0 <= eps ||s|| ||y||: skipped as well.
    c = np.array([1.0, -3.0])
    opt = optim.LBFGS()
    x = np.zeros(2)
    info = opt.step(x, 0.0, c, lambda t: (c @ t, c.copy()))
    assert info["skipped_update"] and info["memory"] == 0


def test_lbfgs_resets_on_non_descent_direction():
    f, _ = make_quadratic(n=4, seed=2)
    x = np.ones(4)
    J, g = f(x)
    # A (corrupted) memory pair s = g, y = -g of negative curvature makes the
    # two-loop recursion return d = +g, an ascent direction.
    opt = optim.LBFGS(memory=2)
    opt.load_state_dict(dict(optim.LBFGS(memory=2).state_dict(), S=g[None, :], Y=-g[None, :],
                             rho=np.array([-1.0 / (g @ g)]), iterations=1))
    info = opt.step(x, J, g, f)
    assert info["memory_reset"] and not info["line_search_failed"] and info["loss"] < J
    assert info["memory"] == 1 and not info["skipped_update"]


def test_lbfgs_evaluates_missing_loss_and_stationary_point():
    f, _ = make_quadratic(n=3, seed=3)
    opt = optim.LBFGS()
    x = np.zeros(3)
    info = opt.step(x, None, None, f)
    assert info["evaluations"] >= 2 and info["loss"] < f(np.zeros(3))[0]
    x = np.zeros(3)
    info = optim.LBFGS().step(x, 0.0, np.zeros(3), f)
    assert info["evaluations"] == 0 and info["step_size"] == 0.0 and np.all(x == 0)


# ----------------------------------------------------------------------------- GD, SGD, Adam

@pytest.mark.parametrize("make, iterations, tol", [
    (lambda: optim.GD(lr=1.0), 400, 1e-2),
    (lambda: optim.SGD(lr=0.5, momentum=0.9), 400, 1e-5),
    (lambda: optim.SGD(lr=0.5, momentum=0.9, nesterov=True), 400, 1e-5),
    (lambda: optim.Adam(lr=0.05), 1500, 1e-4),
])
def test_first_order_methods_decrease_a_quadratic(make, iterations, tol):
    f, x_star = make_quadratic(n=20, cond=1e2, seed=4)
    x = np.zeros(20)
    J0 = f(x)[0]
    opt = make()
    _, J, g, infos = run(opt, f, x, iterations)
    assert J < J0 and J <= tol * J0
    assert all(i["loss"] is None and i["evaluations"] == 0 for i in infos)
    assert opt.iterations == iterations


def test_gd_and_sgd_update_rules():
    g = np.array([1.0, -2.0, 0.5])
    x = np.zeros(3)
    info = optim.GD(0.1).step(x, None, g)
    np.testing.assert_array_equal(x, -0.1 * g)
    assert info["step_size"] == 0.1 and info["grad_norm"] == np.linalg.norm(g)
    for nesterov in (False, True):
        opt, x, v = optim.SGD(0.1, momentum=0.5, nesterov=nesterov), np.zeros(3), np.zeros(3)
        ref = np.zeros(3)
        for k in range(3):
            gk = g * (k + 1)
            opt.step(x, None, gk)
            v = 0.5 * v + gk
            ref -= 0.1 * (gk + 0.5 * v if nesterov else v)
        np.testing.assert_allclose(x, ref, rtol=1e-15, atol=0)


def test_adam_first_step_is_lr_sign_g():
    g = np.array([3.0, -1e-3, 0.0, 250.0, -7.0])
    x = np.ones(5)
    optim.Adam(lr=0.01).step(x, None, g)
    np.testing.assert_allclose(x - 1.0, -0.01 * np.sign(g), rtol=1e-5, atol=0)
    # second step against a hand-written reference
    opt, x = optim.Adam(lr=0.01, beta1=0.8, beta2=0.9, eps=1e-6), np.zeros(5)
    m = v = np.zeros(5)
    ref = np.zeros(5)
    for t, gt in enumerate([g, -2 * g + 1.0], start=1):
        opt.step(x, None, gt)
        m = 0.8 * m + 0.2 * gt
        v = 0.9 * v + 0.1 * gt * gt
        ref -= 0.01 * (m / (1 - 0.8**t)) / (np.sqrt(v / (1 - 0.9**t)) + 1e-6)
    np.testing.assert_allclose(x, ref, rtol=1e-13, atol=1e-16)


# ----------------------------------------------------------------------------- state dicts

@pytest.mark.parametrize("make", [
    lambda: optim.GD(0.5),
    lambda: optim.SGD(0.3, momentum=0.8, nesterov=True),
    lambda: optim.Adam(0.05, beta1=0.85),
    lambda: optim.LBFGS(memory=3, lr=0.9),
])
def test_state_dict_round_trip_gives_identical_iterates(make, tmp_path):
    f, _ = make_quadratic(n=10, seed=5)
    opt = make()
    x = np.zeros(10)
    run(opt, f, x, 6)
    path = tmp_path / "ckpt.npz"
    state = opt.state_dict()
    for k, v in state.items():
        assert isinstance(v, (np.ndarray, int, float, bool)), k
    np.savez(path, x=x, **state)
    x_a, *_ = run(opt, f, x.copy(), 5)
    with np.load(path) as d:
        resumed = make()
        resumed.reset()
        # a different optimizer of the same kind: hyperparameters come from the checkpoint
        resumed.load_state_dict(dict(d))
        x_b, *_ = run(resumed, f, d["x"].copy(), 5)
    np.testing.assert_array_equal(x_a, x_b)
    assert resumed.iterations == opt.iterations
    # reset forgets everything
    opt.reset()
    assert opt.iterations == 0
    fresh = make()
    assert all(np.array_equal(np.asarray(opt.state_dict()[k]), np.asarray(fresh.state_dict()[k]))
               for k in fresh.state_dict())


def test_load_state_dict_rejects_bad_entries():
    opt = optim.LBFGS(memory=2)
    run(opt, make_quadratic(n=4)[0], np.zeros(4), 3)
    d = opt.state_dict()
    with pytest.raises(ValueError, match="'rho'"):
        opt.load_state_dict({k: v for k, v in d.items() if k != "rho"})
    with pytest.raises(ValueError, match="memory"):
        opt.load_state_dict(dict(d, memory=0))
    with pytest.raises(ValueError, match="'m'"):
        optim.Adam().load_state_dict({"lr": 1e-3, "beta1": 0.9, "beta2": 0.9, "eps": 1e-8,
                                      "iterations": 0, "v": np.zeros(3)})
    # a state built for another vector length
    with pytest.raises(ValueError, match="reset"):
        opt.step(np.zeros(5), 1.0, np.ones(5), lambda t: (1.0, np.ones(5)))


# ----------------------------------------------------------------------------- lp.Params

@pytest.fixture(scope="module")
def peaks_problem():
    X, Y = lp.datasets.peaks(n=100, seed=0)
    net = lp.ODEResNet(2, 4, 6, 5)
    return net, X, Y


def test_lbfgs_and_adam_on_params(peaks_problem):
    net, X, Y = peaks_problem

    def closure(th):
        return net.loss_and_grad(th, X, Y)

    for opt, steps, factor in ((optim.LBFGS(memory=5), 30, 0.4), (optim.Adam(lr=0.01), 100, 0.6)):
        theta = net.init("box", seed=0)
        buffer = theta.data
        J0, g = closure(theta)
        J = J0
        for _ in range(steps):
            info = opt.step(theta, J, g, closure)
            if info["grad"] is None:
                J, g = closure(theta)
            else:
                J, g = info["loss"], info["grad"]
                assert isinstance(g, lp.Params)
        assert theta.data is buffer  # updated in place
        assert J < factor * J0, (type(opt).__name__, J0, J)

    # Params and their flat arrays give the same iterates
    theta = net.init("box", seed=0)
    flat = theta.data.copy()
    template = theta.copy()

    def flat_closure(v):
        template.data[...] = v
        J, g = closure(template)
        return J, g.data.copy()

    a, b = optim.LBFGS(), optim.LBFGS()
    J, g = closure(theta)
    Jf, gf = flat_closure(flat)
    for _ in range(5):
        ia, ib = a.step(theta, J, g, closure), b.step(flat, Jf, gf, flat_closure)
        J, g, Jf, gf = ia["loss"], ia["grad"], ib["loss"], ib["grad"]
    np.testing.assert_array_equal(theta.data, flat)


def test_dot_and_norm_helpers(peaks_problem):
    net = peaks_problem[0]
    p, q = net.init("he", seed=1), net.init("he", seed=2)
    assert optim.dot(p, q) == p.dot(q) == optim.dot(p.data, q.data)
    assert optim.dot(p.data, q) == p.dot(q)
    assert abs(optim.norm(p) - np.linalg.norm(p.data)) <= 1e-14 * np.linalg.norm(p.data)


MPI_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from mpi4py import MPI
    import layerparallel as lp
    from layerparallel import optim

    comm = MPI.COMM_WORLD
    X, Y = lp.datasets.peaks(n=80, seed=1)
    net = lp.ODEResNet(2, 4, 7, 5, T=3.0, activation="tanh", gamma_tik=1e-3, comm=comm)
    out = {}
    for name, opt in (("lbfgs", optim.LBFGS(memory=4)), ("adam", optim.Adam(lr=0.02))):
        theta = net.init("glorot", seed=3)
        closure = lambda th: net.loss_and_grad(th, X, Y)
        J, g = closure(theta)
        losses = []
        for _ in range(8):
            info = opt.step(theta, J, g, closure)
            J, g = (info["loss"], info["grad"]) if info["grad"] is not None else closure(theta)
            losses.append(J)
        out[name] = theta.gather()
        out[name + "_losses"] = np.array(losses)
    if comm.rank == 0:
        np.savez(sys.argv[1], **out)
""")


@mpi_test
def test_same_iterates_on_three_ranks(tmp_path):
    script, out = tmp_path / "optim_ranks.py", tmp_path / "out.npz"
    script.write_text(MPI_SCRIPT)
    mpirun(3, script, out)
    d = np.load(out)
    X, Y = lp.datasets.peaks(n=80, seed=1)
    net = lp.ODEResNet(2, 4, 7, 5, T=3.0, activation="tanh", gamma_tik=1e-3)
    for name, opt in (("lbfgs", optim.LBFGS(memory=4)), ("adam", optim.Adam(lr=0.02))):
        theta = net.init("glorot", seed=3)
        closure = lambda th: net.loss_and_grad(th, X, Y)  # noqa: E731
        J, g = closure(theta)
        losses = []
        for _ in range(8):
            info = opt.step(theta, J, g, closure)
            J, g = (info["loss"], info["grad"]) if info["grad"] is not None else closure(theta)
            losses.append(J)
        np.testing.assert_allclose(d[name], theta.data, rtol=0, atol=1e-10)
        np.testing.assert_allclose(d[name + "_losses"], losses, rtol=1e-11)


# ----------------------------------------------------------------------------- validation

@pytest.mark.parametrize("make, name", [
    (lambda: optim.GD(0.0), "lr"),
    (lambda: optim.GD(-1.0), "lr"),
    (lambda: optim.GD(float("nan")), "lr"),
    (lambda: optim.SGD(0.1, momentum=1.0), "momentum"),
    (lambda: optim.SGD(0.1, momentum=-0.1), "momentum"),
    (lambda: optim.SGD(0.1, nesterov="yes"), "nesterov"),
    (lambda: optim.Adam(lr=0), "lr"),
    (lambda: optim.Adam(beta1=1.0), "beta1"),
    (lambda: optim.Adam(beta2=-0.5), "beta2"),
    (lambda: optim.Adam(eps=0.0), "eps"),
    (lambda: optim.LBFGS(memory=0), "memory"),
    (lambda: optim.LBFGS(memory=2.5), "memory"),
    (lambda: optim.LBFGS(lr=-1), "lr"),
    (lambda: optim.LBFGS(c1=0.0), "c1"),
    (lambda: optim.LBFGS(c1=1.0), "c1"),
    (lambda: optim.LBFGS(backtrack=1.0), "backtrack"),
    (lambda: optim.LBFGS(max_backtracks=-1), "max_backtracks"),
    (lambda: optim.LBFGS(curvature_eps=-1e-3), "curvature_eps"),
])
def test_bad_arguments_raise(make, name):
    with pytest.raises(ValueError, match=name):
        make()


def test_bad_step_inputs_raise():
    f = make_quadratic(n=3)[0]
    with pytest.raises(ValueError, match="theta"):
        optim.GD(0.1).step([0.0, 0.0, 0.0], None, np.ones(3))
    with pytest.raises(ValueError, match="theta"):  # float64 and float32 only
        optim.GD(0.1).step(np.zeros(3, dtype=np.float16), None, np.ones(3))
    with pytest.raises(ValueError, match="grad"):
        optim.GD(0.1).step(np.zeros(3), None, np.ones(4))
    with pytest.raises(ValueError, match="NaN"):
        optim.Adam().step(np.zeros(3), None, np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="closure"):
        optim.LBFGS().step(np.zeros(3), 1.0, np.ones(3))
    with pytest.raises(ValueError, match="loss"):
        optim.LBFGS().step(np.zeros(3), np.inf, np.ones(3), f)
    with pytest.raises(ValueError, match="closure"):
        optim.LBFGS().step(np.zeros(3), 1.0, np.ones(3), lambda t: 1.0)


# ----------------------------------------------------------------------------- loss-only trials

@pytest.mark.parametrize("policy", ["auto", "loss", "full"])
def test_lbfgs_loss_only_trials_give_the_same_iterates(policy):
    """Trials evaluated by the loss alone (gradient only at the accepted point)
    take exactly the steps of full evaluations, with fewer gradients."""
    calls = {"full": 0, "loss": 0}

    def full(x):
        calls["full"] += 1
        return rosenbrock(x)

    def loss_only(x):
        calls["loss"] += 1
        return rosenbrock(x)[0]
    loss_only.relative_cost = 1.0 / 3.0

    ref, _, _, ref_infos = run(optim.LBFGS(memory=5), rosenbrock, np.array([-1.2, 1.0]), 40)
    x = np.array([-1.2, 1.0])
    opt = optim.LBFGS(memory=5, trial_evaluations=policy)
    J, g = rosenbrock(x)
    infos = []
    for _ in range(40):
        info = opt.step(x, J, g, full, loss_closure=loss_only)
        infos.append(info)
        J, g = info["loss"], info["grad"]
    np.testing.assert_array_equal(x, ref)
    assert [i["step_size"] for i in infos] == [i["step_size"] for i in ref_infos]
    trials = sum(i["trials"] for i in infos)
    assert sum(i["loss_evaluations"] for i in infos) == calls["loss"]
    assert sum(i["evaluations"] for i in infos) == calls["full"] + calls["loss"]
    if policy == "full":
        assert calls["loss"] == 0 and calls["full"] == trials
    else:
        assert calls["loss"] > 0
        assert calls["full"] < trials  # gradients only where needed
    if policy == "loss":
        assert calls["full"] == 40  # one per accepted point
    assert opt.state_dict()["trial_counts"].sum() > 0


def test_lbfgs_auto_policy_follows_the_acceptance_statistics():
    opt = optim.LBFGS()
    opt._loss_closure = lambda x: 0.0
    opt._loss_closure.relative_cost = 1.0 / 3.0
    opt._trial_counts[:] = [[100, 95], [100, 40]]  # first trials accepted, later ones rarely
    assert opt._full_trial(0) and not opt._full_trial(1) and not opt._full_trial(5)
    opt._trial_counts[:] = [[100, 30], [100, 30]]
    assert not opt._full_trial(0)
    with pytest.raises(ValueError, match="trial_evaluations"):
        optim.LBFGS(trial_evaluations="sometimes")
    bad = dict(optim.LBFGS().state_dict(), trial_counts=np.array([[1, 2], [0, 0]]))
    with pytest.raises(ValueError, match="trial_counts"):
        optim.LBFGS().load_state_dict(bad)
