"""Initializers, and the Box property against He."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel.init import box_layers


def box_image(net, theta, n_points=2000, seed=0):
    """Push points of [0, 1]^w through the residual layers only (padding opening)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n_points, net.width))
    return X, net.forward(theta, X)


def test_box_keeps_the_box_image_bounded_while_he_explodes():
    w, N = 8, 128
    # h = T/N = 1: the plain ResNet u + sigma(W u + b) of the Box paper.
    net = lp.ODEResNet(w, w, N, 1, T=float(N), activation="relu", opening="padding")
    X, U_box = box_image(net, net.init("box", seed=0, magnitude=1.0))
    _, U_he = box_image(net, net.init("he", seed=0))
    spread0 = X.std(axis=0).mean()
    spread_box = U_box.std(axis=0).mean()
    spread_he = U_he.std(axis=0).mean()
    # Box: each layer adds at most m/N per coordinate, so the image stays in
    # [0, 2]^w, and the identity path keeps the spread from collapsing.
    assert U_box.min() >= 0.0 and U_box.max() <= 2.0 + 1e-12
    assert 0.5 * spread0 <= spread_box <= 2.0 * spread0
    # He: the same net grows by orders of magnitude.
    assert spread_he > 100 * spread0


def test_box_cut_planes_pass_through_the_box():
    rng = np.random.default_rng(3)
    m, N, w = 2.0, 16, 5
    W, b = box_layers(rng, N, w, m)
    # Max over the box corners of relu(W_i x + b_i) equals m/N, min is 0.
    corners = np.array(np.meshgrid(*[[0.0, m]] * w)).reshape(w, -1).T
    values = np.maximum(np.einsum("lij,kj->lik", W, corners) + b[:, :, None], 0.0)
    np.testing.assert_allclose(values.max(axis=2), m / N, rtol=1e-12)
    assert (values.min(axis=2) == 0.0).all()


@pytest.mark.parametrize("activation", ["smoothrelu", "tanh"])
def test_box_scale_for_other_activations(activation):
    net = lp.ODEResNet(3, 4, 10, 2, activation=activation, eta=0.05)
    theta = net.init("box", seed=1, magnitude=1.0)
    rng = np.random.default_rng(0)
    corners = np.array(np.meshgrid(*[[0.0, 1.0]] * 4)).reshape(4, -1).T
    z = np.einsum("lij,kj->lik", theta.W, corners) + theta.b[:, :, None]
    sigma = {"tanh": np.tanh,
             "smoothrelu": lambda x: np.where(x >= 0.05, x, np.where(
                 x <= -0.05, 0.0, (x + 0.05) ** 2 / 0.2))}[activation]
    np.testing.assert_allclose(sigma(z).max(axis=2), 1.0 / 10, rtol=1e-10)
    del rng


def test_initializers_statistics():
    net = lp.ODEResNet(50, 200, 20, 30, activation="relu")
    assert np.all(net.init("zeros").data == 0.0)
    u = net.init("uniform", seed=0, magnitude=0.3).data
    assert np.abs(u).max() <= 0.3 and np.abs(u).max() > 0.29
    he = net.init("he", seed=0)
    assert abs(he.W.std() - np.sqrt(2.0 / 200)) < 0.02 * np.sqrt(2.0 / 200)
    assert np.all(he.b == 0.0)
    gl = net.init("glorot", seed=0)
    a = np.sqrt(6.0 / 400)
    assert np.abs(gl.W).max() <= a and abs(gl.W.std() - a / np.sqrt(3)) < 0.02 * a
    assert np.abs(gl.W_in).max() <= np.sqrt(6.0 / 250)


def test_init_is_deterministic_in_seed():
    net = lp.ODEResNet(2, 6, 8, 3)
    for method in ("uniform", "he", "glorot", "box"):
        a, b, c = net.init(method, seed=4), net.init(method, seed=4), net.init(method, seed=5)
        assert np.array_equal(a.data, b.data)
        assert not np.array_equal(a.data, c.data)


def test_outer_initializer_for_opening_and_head():
    net = lp.ODEResNet(3, 6, 5, 4)
    theta = net.init("uniform", seed=0, magnitude=0.0, outer="glorot")
    assert np.all(theta.W == 0.0) and np.all(theta.b == 0.0)
    assert np.abs(theta.W_in).max() > 0.1 and np.abs(theta.W_out).max() > 0.1
    with pytest.raises(ValueError, match="outer"):
        net.init("he", outer="box")
