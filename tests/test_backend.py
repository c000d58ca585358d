"""Backends on any machine: the device argument, the errors without CUDA, and
the host backend's engine and layer kernels against numpy."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import _core


def test_default_device_is_cpu_and_cpu_is_accepted():
    net = lp.ODEResNet(2, 4, 8, 3)
    assert net.device == "cpu"
    assert lp.ODEResNet(2, 4, 8, 3, device="CPU").device == "cpu"


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cpu:0", "", 0, None])
def test_unknown_device_is_a_value_error(bad):
    with pytest.raises(ValueError, match="device"):
        lp.ODEResNet(2, 4, 8, 3, device=bad)


@pytest.mark.skipif(lp.cuda_available(), reason="a CUDA device is usable here")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_build_or_device_is_a_clear_value_error(device):
    match = "no CUDA backend" if not _core.cuda_built else "no CUDA device"
    with pytest.raises(ValueError, match=match):
        lp.ODEResNet(2, 4, 8, 3, device=device)


def test_cuda_device_index_beyond_the_visible_ones():
    n = _core.cuda_device_count()
    with pytest.raises(ValueError, match="device"):
        lp.ODEResNet(2, 4, 8, 3, device=f"cuda:{n + 3}")


def test_host_vector_kernels_match_numpy():
    rng = np.random.default_rng(0)
    x, y, z = (rng.standard_normal(101) for _ in range(3))
    out, _ = _core._vector_op(-1, "axpy", x, y, z, 0.7)
    np.testing.assert_array_equal(out, y + 0.7 * x)
    out, _ = _core._vector_op(-1, "fas_update", x, y, z, 0.0)
    np.testing.assert_array_equal(out, y + (x - z))
    out, _ = _core._vector_op(-1, "copy", x, y, z, 0.0)
    np.testing.assert_array_equal(out, x)
    out, _ = _core._vector_op(-1, "fill", x, y, z, 2.5)
    np.testing.assert_array_equal(out, np.full(101, 2.5))
    out, s = _core._vector_op(-1, "residual", x, y, z, 0.0)
    r1 = y - x
    np.testing.assert_array_equal(out, r1 - z)
    assert s == pytest.approx(np.sum(r1**2) + np.sum((r1 - z) ** 2), rel=1e-14)


def test_host_layer_kernels_match_numpy():
    rng = np.random.default_rng(1)
    w, batch, h = 5, 7, 0.3
    W, b = rng.standard_normal(w * w), rng.standard_normal(w)
    u, lam, D = (rng.standard_normal(batch * w) for _ in range(3))
    Wm, U, L = W.reshape(w, w), u.reshape(batch, w), lam.reshape(batch, w)
    Z = U @ Wm.T + b
    r = _core._layer_op(-1, "forward", "tanh", 0.1, W, b, h, u, lam, D)
    np.testing.assert_allclose(r["out"].reshape(batch, w), U + h * np.tanh(Z), rtol=1e-13)
    r = _core._layer_op(-1, "adjoint", "tanh", 0.1, W, b, h, u, lam, D)
    d = (1 - np.tanh(Z) ** 2) * L
    np.testing.assert_allclose(r["out"].reshape(batch, w), L + h * d @ Wm, rtol=1e-13)
    r = _core._layer_op(-1, "gradient", "tanh", 0.1, W, b, h, u, lam, D)
    np.testing.assert_allclose(r["gW"].reshape(w, w), h * L.T @ U, rtol=1e-13)
    np.testing.assert_allclose(r["gb"], h * L.sum(axis=0), rtol=1e-13)
