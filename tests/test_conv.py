"""The convolutional ODE-ResNet against an independent numpy reference, its
gradient against finite differences, MGRIT against serial propagation, and
its argument checks."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel.params import BLOCKS
from reference import activation as sigma
from reference import log_softmax, sq

from conftest import finite_difference_grad, mpi_test, mpirun


# ---- numpy reference, written from the formulas ------------------------------
def conv(x, K, b):
    """Stride-1 'same' cross-correlation: out[n,o,y,x] = b[o] + sum_{c,i,j}
    K[o,c,i,j] x[n,c,y+i-p,x+j-p], zero outside the image."""
    k = K.shape[2]
    p = k // 2
    H, W = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((x.shape[0], K.shape[0], H, W))
    for i in range(k):
        for j in range(k):
            out += np.einsum("oc,nchw->nohw", K[:, :, i, j], xp[:, :, i:i + H, j:j + W])
    return out + b[None, :, None, None]


def ref_forward(net, theta, X):
    if net.opening == "padding":
        u = np.zeros((X.shape[0], net.channels) + X.shape[2:])
        u[:, :X.shape[1]] = X
    else:
        u = conv(X, theta.W_in, theta.b_in)
        if net.opening == "activation":
            u = sigma(net.activation, u, net.eta)
    for K, b in zip(theta.W, theta.b):
        u = u + net.h * sigma(net.activation, conv(u, K, b), net.eta)
    return u


def ref_loss(net, theta, X, Y):
    U = ref_forward(net, theta, X)
    f = U.mean(axis=(2, 3)) if net.pooling == "average" else U.reshape(U.shape[0], -1)
    out = f @ theta.W_out.T + theta.b_out
    h = net.h
    W, b = theta.W, theta.b
    reg = 0.5 * net.gamma_tik * h * (sq(W) + sq(b))
    reg += 0.5 * net.gamma_ddt / h * (sq(np.diff(W, axis=0)) + sq(np.diff(b, axis=0)))
    reg += 0.5 * net.gamma_out * (sq(theta.W_in) + sq(theta.b_in) + sq(theta.W_out)
                                  + sq(theta.b_out))
    return float(-(Y * log_softmax(out)).sum() / X.shape[0]) + reg


def problem(in_shape=(2, 5, 4), channels=3, n_layers=4, n_out=3, n=6, seed=0, **kw):
    rng = np.random.default_rng(seed)
    net = lp.ConvODEResNet(in_shape, channels, n_layers, n_out, T=1.5, eta=0.3, **kw)
    theta = net.init("uniform", seed=seed, magnitude=0.5)
    X = rng.uniform(-1, 1, size=(n,) + tuple(in_shape))
    Y = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    return net, theta, X, Y


# ---- forward and loss against the reference ----------------------------------
@pytest.mark.parametrize("kw", [
    {}, {"kernel_size": 1}, {"kernel_size": 5}, {"opening": "linear", "activation": "tanh"},
    {"opening": "padding", "activation": "relu"}, {"pooling": "flatten"},
    {"gamma_tik": 0.3, "gamma_ddt": 0.02, "gamma_out": 0.4},
])
def test_forward_and_loss_match_numpy_reference(kw):
    net, theta, X, Y = problem(**kw)
    U = net.forward(theta, X)
    R = ref_forward(net, theta, X)
    assert U.shape == (X.shape[0], net.channels) + X.shape[2:]
    np.testing.assert_allclose(U, R, rtol=1e-12, atol=1e-12)
    assert np.abs(R - ref_forward(net, theta, 0 * X)).max() > 1e-3  # the data matter
    assert abs(net.loss(theta, X, Y) - ref_loss(net, theta, X, Y)) <= 1e-12 * abs(
        ref_loss(net, theta, X, Y))


def test_single_conv_layer_is_a_cross_correlation():
    # One layer, linear opening = the input, relu: u_1 = x + h relu(K * x + b).
    net = lp.ConvODEResNet((2, 6, 7), 2, 1, 2, T=1.0, opening="padding", activation="relu")
    theta = net.init("glorot", seed=4)
    X = np.random.default_rng(4).standard_normal((3, 2, 6, 7))
    expected = X + np.maximum(conv(X, theta.W[0], theta.b[0]), 0.0)
    np.testing.assert_allclose(net.forward(theta, X), expected, rtol=1e-13, atol=1e-13)


# ---- gradients against finite differences ------------------------------------
@pytest.mark.parametrize("kw", [
    {"activation": "smoothrelu"}, {"activation": "tanh", "opening": "linear"},
    {"activation": "relu", "opening": "padding", "pooling": "flatten"},
    {"activation": "tanh", "kernel_size": 5, "gamma_tik": 0.3, "gamma_ddt": 0.05,
     "gamma_out": 0.2},
])
def test_every_gradient_block_against_finite_differences(kw):
    net, theta, X, Y = problem(in_shape=(2, 4, 3), n=4, **kw)
    _, grad = net.loss_and_grad(theta, X, Y)
    fd = finite_difference_grad(net, theta, X, Y)
    for name in BLOCKS:
        a, b = getattr(grad, name), getattr(fd, name)
        if a.size == 0:
            continue
        rel = np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b))
        assert rel <= 1e-6, f"block {name}: relative error {rel:.2e}"
        assert np.linalg.norm(b) > 1e-8, f"block {name}: finite differences vanish"


# ---- MGRIT == serial -----------------------------------------------------------
@pytest.mark.parametrize("storage, cycle, cf", [("all", "V", 2), ("C", "F", 3)])
def test_mgrit_matches_serial(storage, cycle, cf):
    net, theta, X, Y = problem(in_shape=(1, 6, 6), channels=4, n_layers=12, n=5, seed=2,
                               gamma_tik=0.01, gamma_ddt=0.01)
    J0, g0 = net.loss_and_grad(theta, X, Y)
    mg = lp.MGRIT(cfactor=cf, cycle=cycle, storage=storage, tol=1e-12, max_iter=60,
                  warm_start=False)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["converged"] and info["adjoint"]["converged"]
    assert info["forward"]["iterations"] >= 2  # really iterated, not one serial sweep
    assert abs(J - J0) <= 1e-10 * abs(J0)
    assert np.linalg.norm(g.data - g0.data) <= 1e-9 * np.linalg.norm(g0.data)
    U, _ = net.forward(theta, X, solver=mg)
    np.testing.assert_allclose(U, net.forward(theta, X), rtol=0, atol=1e-10)


def test_accuracy_predict_and_threads_agree():
    net, theta, X, Y = problem(n=9, seed=5)
    logits = net.predict(theta, X)
    assert logits.shape == (9, 3)
    assert net.accuracy(theta, X, Y) == np.mean(logits.argmax(1) == Y.argmax(1))
    J1, g1 = net.loss_and_grad(theta, X, Y)
    before = lp.get_num_threads()
    try:
        lp.set_num_threads(2)
        J2, g2 = net.loss_and_grad(theta, X, Y)
        for storage in ("all", "C"):
            mg = lp.MGRIT(cfactor=2, tol=1e-12, storage=storage, warm_start=False)
            J3, g3, _ = net.loss_and_grad(theta, X, Y, solver=mg)
            assert abs(J3 - J1) <= 1e-10 * abs(J1)
            assert np.linalg.norm(g3.data - g1.data) <= 1e-9 * np.linalg.norm(g1.data)
    finally:
        lp.set_num_threads(before)
    assert abs(J1 - J2) <= 1e-13 * abs(J1)
    np.testing.assert_allclose(g1.data, g2.data, rtol=1e-11, atol=1e-14)


def test_box_and_other_initializers_have_the_right_shapes():
    net = lp.ConvODEResNet((1, 8, 8), 4, 6, 10, kernel_size=3)
    for method in ("zeros", "uniform", "he", "glorot", "box"):
        theta = net.init(method, seed=1)
        assert theta.W.shape == (6, 4, 4, 3, 3) and theta.W_in.shape == (4, 1, 3, 3)
        assert theta.W_out.shape == (10, 4)
        assert np.isfinite(theta.data).all()
    box = net.init("box", seed=1)
    assert np.abs(box.W).max() > 0 and np.abs(box.b).max() > 0
    np.testing.assert_array_equal(box.data, net.init("box", seed=1).data)


# ---- bad input ---------------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, match", [
    (((1, 8, 8), 4, 4, 10), {"kernel_size": 4}, "odd"),
    (((1, 8, 8), 4, 4, 10), {"kernel_size": 0}, "kernel_size"),
    (((8, 8), 4, 4, 10), {}, "in_shape"),
    (((3, 8, 8), 2, 4, 10), {"opening": "padding"}, "channels"),
    (((1, 8, 8), 4, 4, 10), {"pooling": "max"}, "pooling"),
    (((1, 8, 0), 4, 4, 10), {}, "in_shape"),
])
def test_bad_construction_is_a_value_error(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        lp.ConvODEResNet(*args, **kwargs)


def test_bad_images_are_value_errors():
    net, theta, X, Y = problem()
    with pytest.raises(ValueError, match=r"shape \(n, 2, 5, 4\)"):
        net.forward(theta, X[:, :1])  # channel mismatch
    with pytest.raises(ValueError, match="shape"):
        net.loss_and_grad(theta, X[:, :, :4], Y)  # wrong image size
    with pytest.raises(ValueError, match="4-dimensional"):
        net.forward(theta, X.reshape(X.shape[0], -1))
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        net.forward(theta, bad)
    with pytest.raises(ValueError, match="rows"):
        net.loss(theta, X, Y[:-1])
    with pytest.raises(ValueError, match="theta"):
        net.forward(theta.data[:-1], X)


# ---- the same numbers at 1, 2 and 3 ranks ----------------------------------------
@pytest.mark.slow
@mpi_test
def test_same_numbers_at_one_two_and_three_ranks(tmp_path):
    import os
    import sys

    here = os.path.dirname(__file__)
    sys.path.insert(0, os.path.join(here, "mpi"))
    try:
        from conv_ranks import setup
    finally:
        sys.path.pop(0)
    net, theta, X, Y = setup()
    J0, g0 = net.loss_and_grad(theta, X, Y)
    U0 = net.forward(theta, X)
    runs = {}
    for k in (1, 2, 3):
        out = tmp_path / f"k{k}.npz"
        mpirun(k, os.path.join(here, "mpi", "conv_ranks.py"), out)
        d = runs[k] = np.load(out)
        assert abs(d["J_serial"] - J0) <= 1e-12 * abs(J0)
        np.testing.assert_allclose(d["g_serial"], g0.data, rtol=0,
                                   atol=1e-13 * np.abs(g0.data).max())
        assert abs(d["J"] - J0) <= 1e-9 * abs(J0)
        assert np.linalg.norm(d["g"] - g0.data) <= 1e-9 * np.linalg.norm(g0.data)
        assert np.linalg.norm(d["U"] - U0) <= 1e-9 * np.linalg.norm(U0)
        assert d["its"] >= 2
        assert d["acc"] == net.accuracy(theta, X, Y)
    for k in (2, 3):
        np.testing.assert_allclose(runs[k]["nested"], runs[1]["nested"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(runs[k]["nested_loss"], runs[1]["nested_loss"], rtol=1e-10)
