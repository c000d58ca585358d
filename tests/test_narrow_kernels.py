"""The narrow-width kernels (widths 2-16) and the register-blocked kernels
(widths 32, 64) against the BLAS path, for every width they cover.

Both paths are forced in turn (lp.set_narrow_kernels "on" / "off"), so these
tests cover both on any machine, whatever the timing at first use would pick.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import _core

from conftest import finite_difference_grad

WIDTHS = (2, 4, 8, 16)
BLOCKED = (32, 64)
OPS = ("forward", "adjoint", "derivative", "adjoint_linearized", "gradient")


@pytest.fixture(autouse=True)
def restore_mode():
    before = lp.narrow_kernels()
    yield
    lp.set_narrow_kernels(before)


def both_paths(fn):
    out = {}
    for mode in ("on", "off"):
        lp.set_narrow_kernels(mode)
        out[mode] = fn()
    return out["on"], out["off"]


def close(a, b, rtol=1e-13):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(b)), 1.0)
    return np.max(np.abs(a - b)) <= rtol * scale * 10


@pytest.mark.parametrize("width", WIDTHS + BLOCKED)
@pytest.mark.parametrize("activation", ["relu", "tanh", "smoothrelu"])
@pytest.mark.parametrize("batch", [1, 3, 37])  # tails of every row-block size
def test_layer_ops_match_blas(width, activation, batch):
    rng = np.random.default_rng(width * 100 + batch)
    W = rng.standard_normal((width, width))
    b = rng.standard_normal(width)
    u, lam, D = (rng.standard_normal((batch, width)) for _ in range(3))
    for op in OPS:
        def run(op=op):
            return _core._layer_op(-1, op, activation, 0.3, W.ravel(), b, 0.25, u.ravel(),
                                   lam.ravel(), D.ravel())
        on, off = both_paths(run)
        for key in ("out", "work", "gW", "gb"):
            assert close(on[key], off[key]), (op, key)
        assert np.any(np.asarray(on["out"]) != 0) or op == "gradient"


def small_net(width, activation="smoothrelu", n_layers=6):
    rng = np.random.default_rng(width)
    net = lp.ODEResNet(3, width=width, n_layers=n_layers, n_out=4, T=2.0,
                       activation=activation, eta=0.3)
    theta = net.init("uniform", seed=1, magnitude=0.8)
    X = rng.uniform(-1, 1, size=(13, 3))
    Y = np.eye(4)[rng.integers(0, 4, size=13)]
    return net, theta, X, Y


@pytest.mark.parametrize("width", WIDTHS + BLOCKED)
def test_serial_loss_and_gradient_match_blas(width):
    net, theta, X, Y = small_net(width)
    (l1, g1), (l2, g2) = both_paths(lambda: net.loss_and_grad(theta, X, Y))
    assert abs(l1 - l2) <= 1e-13 * max(abs(l2), 1.0)
    assert close(g1.data, g2.data)


@pytest.mark.parametrize("width", BLOCKED)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_blocked_kernels_over_many_chunks(width, activation):
    """A batch of several gradient chunks and row tiles, with a tail."""
    rng = np.random.default_rng(width)
    net = lp.ODEResNet(3, width=width, n_layers=4, n_out=4, T=1.0, activation=activation)
    theta = net.init("glorot", seed=2)
    X = rng.uniform(-1, 1, size=(1031, 3))
    Y = np.eye(4)[rng.integers(0, 4, size=1031)]
    (l1, g1), (l2, g2) = both_paths(lambda: net.loss_and_grad(theta, X, Y))
    assert abs(l1 - l2) <= 1e-13 * max(abs(l2), 1.0)
    assert close(g1.data, g2.data)


@pytest.mark.parametrize("width", [4, 8, 32])
def test_mgrit_forward_adjoint_gradient_match_blas(width):
    net, theta, X, Y = small_net(width, n_layers=16)
    mg = lp.MGRIT(cfactor=2, max_levels=3, tol=None, rtol=None, max_iter=2, warm_start=False)
    (l1, g1, i1), (l2, g2, i2) = both_paths(lambda: net.loss_and_grad(theta, X, Y, solver=mg))
    assert abs(l1 - l2) <= 1e-12 * max(abs(l2), 1.0)
    assert close(g1.data, g2.data, rtol=1e-12)
    assert i1["forward"]["steps"] == i2["forward"]["steps"]


@pytest.mark.parametrize("width", [2, 8, 16, 32])
def test_narrow_gradient_against_finite_differences(width):
    lp.set_narrow_kernels("on")
    net, theta, X, Y = small_net(width, n_layers=3)
    _, grad = net.loss_and_grad(theta, X, Y)
    fd = finite_difference_grad(net, theta, X, Y)
    rel = np.linalg.norm(grad.data - fd.data) / np.linalg.norm(fd.data)
    assert rel <= 1e-6
    assert lp.narrow_kernels(width) is True


def test_mode_switches_and_reports():
    lp.set_narrow_kernels("on")
    assert lp.narrow_kernels() == "on"
    assert lp.narrow_kernels(8) is True
    assert lp.narrow_kernels(5) is False  # no kernel for this width: always the BLAS
    lp.set_narrow_kernels("off")
    assert lp.narrow_kernels(8) is False
    lp.set_narrow_kernels("auto")
    assert lp.narrow_kernels() == "auto"
    assert lp.narrow_kernels(8) in (True, False)  # the measurement's outcome
    assert lp.narrow_kernels(24) is False


def test_bad_mode_is_a_value_error():
    with pytest.raises(ValueError, match="narrow kernel mode"):
        lp.set_narrow_kernels("fast")
    with pytest.raises(ValueError):
        lp.narrow_kernels(0)


def test_environment_variable_sets_the_mode():
    code = "import layerparallel as lp; print(lp.narrow_kernels(), lp.narrow_kernels(8))"
    env = dict(os.environ, LP_NARROW_KERNEL="off")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["off", "False"]
    env["LP_NARROW_KERNEL"] = "sometimes"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0 and "LP_NARROW_KERNEL" in out.stderr


def test_mgrit_equals_serial_with_blocked_kernels():
    """With the blocked kernels forced, MGRIT run to convergence gives serial's
    loss and gradient (MGRIT's linearized adjoint keeps the BLAS path)."""
    lp.set_narrow_kernels("on")
    net, theta, X, Y = small_net(32, n_layers=8)
    J, g = net.loss_and_grad(theta, X, Y)
    mg = lp.MGRIT(cfactor=2, max_levels=3, tol=None, rtol=None, max_iter=8, warm_start=False)
    Jm, gm, _ = net.loss_and_grad(theta, X, Y, solver=mg)
    assert abs(Jm - J) <= 1e-12 * max(abs(J), 1.0)
    assert close(gm.data, g.data, rtol=1e-11)


def test_blocked_kernels_split_over_threads():
    """Row blocks on two threads (threshold forced to 0) give one thread's numbers."""
    lp.set_narrow_kernels("on")
    net, theta, X, Y = small_net(64, n_layers=3)
    X = np.tile(X, (8, 1))
    Y = np.tile(Y, (8, 1))
    old = lp.get_num_threads()
    out = []
    try:
        for threads, flops in ((1, -1.0), (2, 0.0)):
            lp.set_num_threads(threads)
            _core.set_min_parallel_flops(flops)
            out.append(net.loss_and_grad(theta, X, Y))
    finally:
        _core.set_min_parallel_flops(-1.0)
        lp.set_num_threads(old)
    (l1, g1), (l2, g2) = out
    assert abs(l1 - l2) <= 1e-13 * max(abs(l2), 1.0)
    assert close(g1.data, g2.data)


@pytest.mark.parametrize("batch", [5, 37])  # under one block of 8 float rows, and a tail
def test_float32_width8_matches_blas_serial_and_mgrit(batch):
    """float32 at width 8 (the adjoint's blocks of 8 float rows): narrow on
    against off to float32 rounding, for serial propagation and for MGRIT,
    and MGRIT converged equal to serial with the narrow kernels on."""
    rng = np.random.default_rng(batch)
    net = lp.ODEResNet(3, width=8, n_layers=16, n_out=4, T=2.0, activation="relu",
                       dtype="float32")
    theta = net.init("uniform", seed=1, magnitude=0.8)
    X = rng.uniform(-1, 1, size=(batch, 3)).astype(np.float32)
    Y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, size=batch)]
    mg = lp.MGRIT(cfactor=2, max_levels=3, tol=None, rtol=None, max_iter=2, warm_start=False)
    eps = 50 * float(np.finfo(np.float32).eps)
    for solver in (None, mg):
        on, off = both_paths(lambda: net.loss_and_grad(theta, X, Y, solver=solver))
        assert on[1].data.dtype == np.float32
        assert abs(on[0] - off[0]) <= eps * max(abs(off[0]), 1.0)
        assert close(on[1].data, off[1].data, rtol=eps)
    lp.set_narrow_kernels("on")
    exact = lp.MGRIT(cfactor=2, max_levels=3, tol=None, rtol=None, max_iter=16,
                     warm_start=False)
    J, g, _ = net.loss_and_grad(theta, X, Y, solver=exact)
    J_s, g_s = net.loss_and_grad(theta, X, Y)
    assert abs(J - J_s) <= eps * max(abs(J_s), 1.0)
    assert close(g.data, g_s.data, rtol=eps)


def test_relu_at_blocked_widths_keeps_signs_only_there():
    """Serial propagation keeps the signs of z (one byte per entry) for ReLU
    layers whose blocked kernel runs, and z everywhere else."""
    def keeps(width, activation="relu", dtype="float64"):
        net = lp.ODEResNet(3, width=width, n_layers=2, n_out=4, activation=activation,
                           dtype=dtype)
        return _core.keeps_signs(net._net_config, dtype == "float32")

    lp.set_narrow_kernels("on")
    for width in BLOCKED:
        assert keeps(width) and keeps(width, dtype="float32")
        assert not keeps(width, "tanh") and not keeps(width, "smoothrelu")
    assert not keeps(8) and not keeps(48) and not keeps(128)
    lp.set_narrow_kernels("off")
    assert not keeps(64)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("width", BLOCKED)
@pytest.mark.parametrize("batch", [1, 29, 61, 1031])  # inside, at and past the sign blocks
def test_sign_records_match_blas(width, batch, dtype):
    """ReLU with signs kept (blocked kernels on) against z kept (the BLAS path),
    on one thread and on row blocks split over two."""
    rng = np.random.default_rng(width + batch)
    net = lp.ODEResNet(3, width=width, n_layers=5, n_out=4, T=1.0, activation="relu",
                       dtype=dtype)
    theta = net.init("he", seed=4)
    X = rng.uniform(-1, 1, size=(batch, 3)).astype(dtype)
    Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, size=batch)]
    lp.set_narrow_kernels("off")
    l_ref, g_ref = net.loss_and_grad(theta, X, Y)
    lp.set_narrow_kernels("on")
    assert _core.keeps_signs(net._net_config, dtype == "float32")
    rtol = 1e-13 if dtype == "float64" else 50 * float(np.finfo(np.float32).eps)
    old = lp.get_num_threads()
    try:
        for threads, flops in ((1, -1.0), (2, 0.0)):
            lp.set_num_threads(threads)
            _core.set_min_parallel_flops(flops)
            loss, grad = net.loss_and_grad(theta, X, Y)
            assert abs(loss - l_ref) <= rtol * max(abs(l_ref), 1.0)
            assert close(grad.data, g_ref.data, rtol=rtol)
    finally:
        _core.set_min_parallel_flops(-1.0)
        lp.set_num_threads(old)


@pytest.mark.parametrize("width", BLOCKED)
def test_sign_records_against_finite_differences(width):
    lp.set_narrow_kernels("on")
    net, theta, X, Y = small_net(width, activation="relu", n_layers=3)
    assert _core.keeps_signs(net._net_config)
    _, grad = net.loss_and_grad(theta, X, Y)
    fd = finite_difference_grad(net, theta, X, Y)
    rel = np.linalg.norm(grad.data - fd.data) / np.linalg.norm(fd.data)
    assert rel <= 1e-6


def test_sign_records_reused_by_backward_of_a_block():
    """The serial model as a block (forward with a tape, then backward from
    lam_N) reuses the kept signs: the same as propagating again, and as z kept."""
    lp.set_narrow_kernels("on")
    net, theta, X, Y = small_net(64, activation="relu", n_layers=4)
    model = net._model
    rng = np.random.default_rng(5)
    lamN = rng.standard_normal((X.shape[0], 64))
    out = []
    for mode, reuse in (("on", True), ("on", False), ("off", True)):
        lp.set_narrow_kernels(mode)
        uN, tape = model.forward_tape(theta.data, X)
        grad = net.new_params()
        dX = np.zeros(X.size)
        model.backward(theta.data, X, lamN, tape if reuse else 0, grad.data, dX)
        out.append((grad.data.copy(), dX))
    (g_on, dx_on), (g_again, dx_again), (g_off, dx_off) = out
    assert np.array_equal(g_on, g_again) and np.array_equal(dx_on, dx_again)
    assert close(g_on, g_off) and close(dx_on, dx_off)
