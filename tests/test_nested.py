"""Nested iteration: interpolation in layer-time, refinement, work units."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel.nested import refine_layers


def smooth_net(N, T=2.0, seed=0):
    """Weights that are smooth functions of layer-time t_n = n h."""
    net = lp.ODEResNet(2, 5, N, 3, T=T, activation="tanh")
    theta = net.init("glorot", seed=seed)
    rng = np.random.default_rng(seed)
    A, B = rng.standard_normal((2, 5, 5))
    a, b = rng.standard_normal((2, 5))
    t = np.arange(N) * net.h
    theta.W[...] = A[None] * np.cos(t)[:, None, None] + B[None] * t[:, None, None] / T
    theta.b[...] = a[None] * np.sin(2 * t)[:, None] + b[None]
    return net, theta


def test_constant_interpolation_reproduces_layer_constant_weights():
    W = np.tile(np.arange(6.0).reshape(1, 2, 3), (4, 1, 1))
    assert np.array_equal(refine_layers(W, "constant"), np.tile(W[:1], (8, 1, 1)))


def test_linear_interpolation_reproduces_layer_linear_weights():
    N, h = 5, 0.3
    a, b = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    coarse = a + b * (np.arange(N) * h)[:, None]
    fine = a + b * (np.arange(2 * N) * h / 2)[:, None]
    np.testing.assert_allclose(refine_layers(coarse, "linear"), fine, rtol=1e-14)
    # constant interpolation is not exact for these
    assert not np.allclose(refine_layers(coarse, "constant"), fine)


def test_refinement_is_first_order_accurate():
    X, _ = lp.datasets.peaks(n=50, seed=0)
    diffs = []
    for N in (16, 32, 64, 128):
        net, theta = smooth_net(N)
        fine, theta_f = lp.refine(net, theta, "linear")
        assert fine.n_layers == 2 * N and fine.T == net.T
        assert np.array_equal(theta_f.W_out, theta.W_out)
        diffs.append(np.abs(fine.forward(theta_f, X) - net.forward(theta, X)).max())
    ratios = [d1 / d2 for d1, d2 in zip(diffs, diffs[1:])]
    # forward Euler is first order in h: the difference halves as N doubles
    assert all(1.5 < r < 2.5 for r in ratios) and 1.8 < ratios[-1] < 2.2, (diffs, ratios)


@pytest.fixture(scope="module")
def data():
    X, Y = lp.datasets.peaks(n=600, seed=0)
    return lp.datasets.train_validation_split(X, Y, 0.2, seed=1)


def test_nested_run_ends_on_the_fine_net_and_improves_its_last_level(data):
    X, Y, Xv, Yv = data
    net = lp.ODEResNet(2, 6, 32, 5, T=5.0, gamma_tik=1e-5)
    fine, theta, h = lp.nested_train(net, X, Y, lp.optim.LBFGS(), levels=3,
                                     schedule=(20, 15, 10), magnitude=1e-6, seed=1,
                                     validation=(Xv, Yv))
    assert fine.n_layers == 32 and theta.W.shape == (32, 6, 6)
    assert h["n_layers"] == [8] * 20 + [16] * 15 + [32] * 10
    last = [i for i, lv in enumerate(h["level"]) if lv == 2]
    assert h["loss"][last[-1]] < h["loss"][last[0]]
    assert fine.loss(theta, X, Y) < h["loss"][last[0]]
    wu = h["work_units"]
    assert all(b > a for a, b in zip(wu, wu[1:]))
    # the last level's iterations cost about one work unit each
    assert 0.5 < (wu[-1] - wu[last[0] - 1]) / len(last) < 2.0


def test_one_shot_nested_with_refinement_cycles(data):
    X, Y, _, _ = data
    net = lp.ODEResNet(2, 6, 16, 5, T=5.0)
    fine, theta, h = lp.nested_train(net, X, Y, lp.optim.LBFGS(), levels=2, schedule=(10, 8),
                                     magnitude=1e-6, solver=lp.MGRIT(cfactor=2), one_shot=2,
                                     refine_cycles=10, refine_steps=3)
    its = h["mgrit_forward_iterations"]
    assert its[:10] == [2] * 10 and its[10:13] == [10] * 3 and its[13:] == [2] * 5


def test_a_level_ends_at_grad_tol_and_the_next_begins(data):
    """With grad_tol a level stops at its first converged step and the run
    refines; the work units count the steps that ran."""
    X, Y, _, _ = data
    net = lp.ODEResNet(2, 4, 8, 5, T=2.0)
    fine, theta, h = lp.nested_train(net, X, Y, lp.optim.LBFGS(), levels=2, schedule=(60, 60),
                                     magnitude=1e-3, seed=1, grad_tol=0.2)
    levels = h["level"]
    assert fine.n_layers == 8 and set(levels) == {0, 1}
    for lv in (0, 1):
        norms = [g for g, l in zip(h["grad_norm"], levels) if l == lv]
        assert len(norms) < 60 and norms[-1] <= 0.2 and min(norms[:-1], default=1) > 0.2
    assert h["iteration"] == list(range(1, len(levels) + 1))


def test_carrying_the_optimizer_state_over(data):
    X, Y, _, _ = data
    net = lp.ODEResNet(2, 6, 16, 5)
    opt = lp.optim.Adam(lr=1e-2)
    fine, theta, h = lp.nested_train(net, X, Y, opt, levels=2, schedule=(5, 5),
                                     init="box", magnitude=1.0, carry_optimizer=True)
    assert opt.state_dict()["m"].shape == (fine.n_params,)


@pytest.mark.parametrize("kwargs, name", [
    ({"levels": 0}, "levels"), ({"schedule": (1, 2)}, "schedule"), ({"interp": "cubic"}, "interp"),
    ({"one_shot": 2}, "one_shot"), ({"levels": 6, "schedule": (1,) * 6}, "divisible"),
])
def test_nested_train_validates(data, kwargs, name):
    X, Y, _, _ = data
    args = dict(levels=3, schedule=(1, 1, 1))
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        lp.nested_train(lp.ODEResNet(2, 4, 16, 5), X, Y, lp.optim.GD(0.1), **args)
