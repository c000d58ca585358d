"""Every gradient block against central finite differences."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel.params import BLOCKS

from conftest import finite_difference_grad


def small_problem(head, activation="smoothrelu", opening="activation", seed=0, **gammas):
    rng = np.random.default_rng(seed)
    n_in, n_out = 3, 4
    net = lp.ODEResNet(n_in, width=5, n_layers=6, n_out=n_out, T=2.0, activation=activation,
                       opening=opening, head=head, eta=0.3, **gammas)
    theta = net.init("uniform", seed=seed, magnitude=0.8)
    X = rng.uniform(-1, 1, size=(11, n_in))
    if head == "classification":
        Y = np.eye(n_out)[rng.integers(0, n_out, size=11)]
    else:
        Y = rng.standard_normal((11, n_out))
    return net, theta, X, Y


def assert_blocks_match(net, theta, X, Y, tol=1e-6):
    _, grad = net.loss_and_grad(theta, X, Y)
    fd = finite_difference_grad(net, theta, X, Y)
    for name in BLOCKS:
        a, b = getattr(grad, name), getattr(fd, name)
        if a.size == 0:
            continue
        scale = max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)
        rel = np.linalg.norm(a - b) / scale
        assert rel <= tol, f"block {name}: relative error {rel:.2e}"
        assert np.linalg.norm(b) > 1e-8, f"block {name}: finite differences vanish, test is void"


@pytest.mark.parametrize("activation", ["relu", "tanh", "smoothrelu"])
@pytest.mark.parametrize("head", ["classification", "regression"])
def test_gradient_every_activation_and_head(activation, head):
    assert_blocks_match(*small_problem(head, activation))


@pytest.mark.parametrize("opening", ["activation", "linear", "padding"])
def test_gradient_every_opening(opening):
    assert_blocks_match(*small_problem("classification", "tanh", opening, seed=3))


@pytest.mark.parametrize("gammas", [
    {"gamma_tik": 0.7}, {"gamma_ddt": 0.05}, {"gamma_out": 0.9},
    {"gamma_tik": 1e-2, "gamma_ddt": 1e-2, "gamma_out": 1e-2},
])
@pytest.mark.parametrize("head", ["classification", "regression"])
def test_gradient_every_regularizer(gammas, head):
    assert_blocks_match(*small_problem(head, "smoothrelu", seed=5, **gammas))


def test_regularizer_gradient_is_not_trivially_zero():
    # The regularizers alone (zero data term impossible, so compare with and without).
    net0, theta, X, Y = small_problem("regression", seed=7)
    net1 = lp.ODEResNet(3, 5, 6, 4, T=2.0, head="regression", eta=0.3,
                        gamma_tik=0.5, gamma_ddt=0.5, gamma_out=0.5)
    _, g0 = net0.loss_and_grad(theta.data, X, Y)
    _, g1 = net1.loss_and_grad(theta.data, X, Y)
    diff = g1.data - g0.data
    h = net1.h
    W = theta.W
    # Tikhonov part on W_0 is 0.5 h W_0; ddt part is -(0.5/h)(W_1 - W_0).
    expected_W0 = 0.5 * h * W[0] - 0.5 / h * (W[1] - W[0])
    np.testing.assert_allclose(lp.Params(theta.layout, diff).W[0], expected_W0, rtol=1e-10)
    np.testing.assert_allclose(lp.Params(theta.layout, diff).W_out, 0.5 * theta.W_out,
                               rtol=1e-10)


def test_deep_network_gradient_on_peaks():
    X, Y = lp.datasets.peaks(n=40, seed=2)
    net = lp.ODEResNet(2, 4, 32, 5, T=5.0, activation="tanh", gamma_tik=1e-3)
    theta = net.init("glorot", seed=2)
    assert_blocks_match(net, theta, X, Y)
