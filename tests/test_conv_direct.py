"""Direct 3x3 conv kernels (4, 8, 16 channels) against im2col + BLAS: the
same loss and gradient with the kernels forced on and off, finite differences
of the forced-on gradient, MGRIT == serial with them on, and a resumed conv
run taking the path its checkpoint recorded."""

import numpy as np
import pytest

import layerparallel as lp

from conftest import finite_difference_entries, finite_difference_grad


@pytest.fixture
def mode():
    """Force paths inside a test; the caller's mode comes back afterwards."""
    saved = lp.narrow_kernels()
    yield lp.set_narrow_kernels
    lp.set_narrow_kernels(saved)


def problem(channels, in_shape=(2, 7, 5), n_layers=4, n=3, seed=0, dtype="float64", **kw):
    rng = np.random.default_rng(seed)
    net = lp.ConvODEResNet(in_shape, channels, n_layers, 3, T=1.0, kernel_size=3, dtype=dtype,
                           **kw)
    theta = net.init("uniform", seed=seed, magnitude=0.4)
    theta.data[...] += rng.uniform(-0.05, 0.05, theta.data.shape)  # nonzero biases too
    X = rng.uniform(-1, 1, size=(n,) + tuple(in_shape)).astype(dtype)
    Y = np.eye(3)[rng.integers(0, 3, size=n)]
    return net, theta, X, Y


def both_paths(mode, net, theta, X, Y):
    out = {}
    for path in ("on", "off"):
        mode(path)
        J, g = net.loss_and_grad(theta, X, Y)
        out[path] = (J, g.data.astype(np.float64))
    return out


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
@pytest.mark.parametrize("channels", [4, 8, 16, 6])
@pytest.mark.parametrize("activation, in_shape", [("relu", (2, 7, 5)), ("tanh", (1, 5, 9)),
                                                   ("relu", (1, 3, 7))])
def test_direct_equals_im2col(mode, dtype, tol, channels, activation, in_shape):
    net, theta, X, Y = problem(channels, in_shape, activation=activation, dtype=dtype)
    direct = lp._core.uses_conv_direct if dtype == "float64" else lp._core.uses_conv_direct32
    mode("on")
    assert direct(channels, 3) == (channels in (4, 8, 16))
    mode("off")
    assert not direct(channels, 3)
    r = both_paths(mode, net, theta, X, Y)
    (Jon, gon), (Joff, goff) = r["on"], r["off"]
    assert abs(Jon - Joff) <= tol * abs(Joff)
    assert np.linalg.norm(gon - goff) <= tol * np.linalg.norm(goff)
    assert np.linalg.norm(goff) > 0
    mode("on")
    U_on = net.forward(theta, X)
    mode("off")
    np.testing.assert_allclose(U_on, net.forward(theta, X), rtol=tol, atol=tol)


def test_forced_on_gradient_against_finite_differences(mode):
    mode("on")
    net, theta, X, Y = problem(8, (1, 5, 3), n_layers=3, n=2, activation="tanh", seed=4)
    assert lp._core.uses_conv_direct(8, 3)
    _, g = net.loss_and_grad(theta, X, Y)
    fd = finite_difference_grad(net, theta, X, Y)
    rel = np.linalg.norm(g.data - fd.data) / np.linalg.norm(fd.data)
    assert rel <= 1e-7, rel


def test_forced_on_gradient_16_channels_against_finite_differences(mode):
    """16 channels (4 input channels per pass of the kernel gradient) on rows of
    6 pixels (one register block of 4 plus 2 single pixels): central
    differences in 300 entries drawn across all kernels, biases and the head."""
    mode("on")
    net, theta, X, Y = problem(16, (1, 4, 6), n_layers=2, n=2, activation="tanh", seed=5)
    assert lp._core.uses_conv_direct(16, 3)
    _, g = net.loss_and_grad(theta, X, Y)
    idx = np.random.default_rng(0).choice(theta.data.size, size=300, replace=False)
    fd = finite_difference_entries(net, theta, X, Y, idx)
    rel = np.linalg.norm(g.data[idx] - fd) / np.linalg.norm(fd)
    assert np.linalg.norm(fd) > 0 and rel <= 1e-7, rel


def test_mgrit_matches_serial_with_direct_kernels(mode):
    mode("on")
    net, theta, X, Y = problem(4, (1, 6, 6), n_layers=12, n=4, seed=2, gamma_tik=0.01)
    J0, g0 = net.loss_and_grad(theta, X, Y)
    mg = lp.MGRIT(cfactor=2, tol=1e-12, max_iter=60, warm_start=False)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["converged"] and info["adjoint"]["converged"]
    assert info["forward"]["iterations"] >= 2
    assert abs(J - J0) <= 1e-10 * abs(J0)
    assert np.linalg.norm(g.data - g0.data) <= 1e-9 * np.linalg.norm(g0.data)


def test_resume_takes_the_recorded_conv_path(tmp_path, mode):
    """A conv run resumed in a process that would take the other path takes
    the recorded one: the weights are the uninterrupted run's bit for bit."""
    rng = np.random.default_rng(7)
    X = rng.uniform(-1, 1, size=(6, 1, 5, 5))
    Y = np.eye(3)[rng.integers(0, 3, size=6)]

    def run(path, iterations, **kw):
        mode(path)
        net = lp.ConvODEResNet((1, 5, 5), 8, 4, 3, T=1.0)
        theta = net.init("he", seed=1)
        lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=iterations, **kw)
        return theta.data.copy()

    on, off = run("on", 5), run("off", 5)
    assert not np.array_equal(on, off)  # the paths differ in the last bits
    d = str(tmp_path / "ck")
    run("on", 2, checkpoint=d)
    np.testing.assert_array_equal(run("off", 5, checkpoint=d, resume=True), on)
    assert lp.narrow_kernels() == "off"
