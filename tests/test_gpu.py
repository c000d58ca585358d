"""The CUDA backend against the host backend (double precision, 1e-12
relative): every engine and layer kernel, forward, adjoint, gradients and
converged MGRIT, and 1 vs 2 ranks on the GPU. Skipped without a usable CUDA
device; LP_REQUIRE_GPU=1 turns the skip into a failure."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import _core

from gpu import require_gpu

RTOL = 1e-12
pytestmark = pytest.mark.gpu
HERE = os.path.dirname(__file__)


@pytest.fixture(autouse=True)
def gpu():
    require_gpu()


def close(a, b, rtol=RTOL):
    """max |a - b| <= rtol max |b| (relative to the array's scale)."""
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(b)), 1e-300)
    assert np.max(np.abs(a - b)) <= rtol * scale, np.max(np.abs(a - b)) / scale


@pytest.mark.parametrize("op", ["copy", "fill", "axpy", "fas_update", "residual"])
def test_vector_kernels_equal_the_host(op):
    rng = np.random.default_rng(0)
    x, y, z = (rng.standard_normal(100_003) for _ in range(3))
    cpu, s_cpu = _core._vector_op(-1, op, x, y, z, 0.7)
    gpu, s_gpu = _core._vector_op(0, op, x, y, z, 0.7)
    close(gpu, cpu)
    assert s_gpu == pytest.approx(s_cpu, rel=RTOL, abs=0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "smoothrelu"])
@pytest.mark.parametrize("op", ["forward", "adjoint", "derivative", "adjoint_linearized",
                                "gradient"])
@pytest.mark.parametrize("width, batch", [(8, 333), (64, 1000)])
def test_layer_kernels_equal_the_host(activation, op, width, batch):
    rng = np.random.default_rng(1)
    W = rng.standard_normal(width * width) / np.sqrt(width)
    b = rng.standard_normal(width)
    u, lam, D = (rng.standard_normal(batch * width) for _ in range(3))
    cpu = _core._layer_op(-1, op, activation, 0.1, W, b, 0.05, u, lam, D)
    gpu = _core._layer_op(0, op, activation, 0.1, W, b, 0.05, u, lam, D)
    for key in ("out", "work", "gW", "gb"):
        if np.any(cpu[key]):
            close(gpu[key], cpu[key])


def nets(**kw):
    args = dict(n_in=2, width=8, n_layers=37, n_out=5, T=4.0, activation="smoothrelu",
                gamma_tik=1e-3, gamma_ddt=1e-2, gamma_out=1e-3)
    args.update(kw)
    return lp.ODEResNet(**args), lp.ODEResNet(**args, device="cuda")


def test_device_name():
    assert lp.ODEResNet(2, 4, 8, 3, device="cuda").device == "cuda:0"
    assert "cuda" in _core.device_name(0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "smoothrelu"])
def test_serial_forward_and_gradient_equal_the_host(activation):
    X, Y = lp.datasets.peaks(n=500, seed=3)
    cpu, gpu = nets(activation=activation)
    theta = cpu.init("glorot", seed=2)
    close(gpu.forward(theta, X), cpu.forward(theta, X))
    J_c, g_c = cpu.loss_and_grad(theta, X, Y)
    J_g, g_g = gpu.loss_and_grad(theta, X, Y)
    assert J_g == pytest.approx(J_c, rel=RTOL)
    close(g_g.data, g_c.data)
    close(gpu.predict(theta, X), cpu.predict(theta, X))


@pytest.mark.parametrize("cycle, storage, cfactor", [("V", "all", 4), ("F", "C", 3),
                                                      ("V", "C", 2)])
def test_converged_mgrit_equals_the_host(cycle, storage, cfactor):
    X, Y = lp.datasets.peaks(n=400, seed=3)
    cpu, gpu = nets()
    theta = cpu.init("glorot", seed=2)
    # A fixed number of cycles, far past convergence: both backends do the same
    # arithmetic, so they agree to rounding whatever the stopping test would say.
    mg = lp.MGRIT(cfactor=cfactor, cycle=cycle, storage=storage, tol=None, rtol=None,
                  max_iter=25, warm_start=False)
    J_c, g_c, info_c = cpu.loss_and_grad(theta, X, Y, solver=mg)
    J_g, g_g, info_g = gpu.loss_and_grad(theta, X, Y, solver=mg)
    for kind in ("forward", "adjoint"):
        assert info_g[kind]["residuals"][-1] < 1e-10
        assert info_g[kind]["iterations"] == info_c[kind]["iterations"]
    assert J_g == pytest.approx(J_c, rel=RTOL)
    close(g_g.data, g_c.data)
    J_s, g_s = cpu.loss_and_grad(theta, X, Y)  # and both equal serial propagation
    close(g_g.data, g_s.data, rtol=1e-9)
    U_g, _ = gpu.forward(theta, X, solver=mg)
    close(U_g, cpu.forward(theta, X))


def test_warm_starts_and_checkpoint_states_on_the_device():
    X, Y = lp.datasets.peaks(n=200, seed=3)
    _, gpu = nets()
    theta = gpu.init("glorot", seed=2)
    mg = lp.MGRIT(cfactor=4, tol=1e-10, max_iter=50, warm_start=True)
    gpu.loss_and_grad(theta, X, Y, solver=mg)
    _, _, info = gpu.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["iterations"] == 0  # warm start from the solution
    model = gpu._parallel_model(mg)
    batch, states = model.warm_state()
    model.set_warm_state(batch, states)
    np.testing.assert_array_equal(model.warm_state()[1], states)


@pytest.mark.mpi
def test_one_and_two_ranks_equal_on_the_gpu(tmp_path):
    mpiexec = shutil.which("mpiexec") or shutil.which(
        "mpiexec", path=os.path.dirname(sys.executable))
    if not (mpiexec and _core.mpi_available):
        pytest.skip("needs mpiexec and an MPI build")
    results = []
    for k in (1, 2):
        out = tmp_path / f"out{k}.npz"
        cmd = [mpiexec, "-n", str(k), sys.executable, "-m", "mpi4py",
               os.path.join(HERE, "mpi", "gpu_ranks.py"), str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results.append(np.load(out))
    one, two = results
    assert two["J"] == pytest.approx(float(one["J"]), rel=RTOL)
    close(two["g"], one["g"])
    close(two["U"], one["U"])


@pytest.mark.parametrize("activation", ["relu", "tanh", "smoothrelu"])
def test_float32_on_the_device_equals_the_host(activation):
    # cuBLAS S routines and the float kernels against the host's sgemm path:
    # both round each product to float32, in another order, so 1e-5 relative.
    X, Y = lp.datasets.peaks(n=300, seed=2)
    host = lp.ODEResNet(2, 8, 24, 5, activation=activation, dtype="float32")
    dev = lp.ODEResNet(2, 8, 24, 5, activation=activation, dtype="float32", device="cuda")
    theta = host.init("glorot", seed=1)
    J0, g0 = host.loss_and_grad(theta, X, Y)
    J1, g1 = dev.loss_and_grad(theta, X, Y)
    assert g1.dtype == np.float32 and abs(J1 - J0) <= 1e-5 * abs(J0)
    close(g1.data, g0.data, 1e-5)
    mg = lp.MGRIT(cfactor=2, tol=None, rtol=1e-6, max_iter=40, warm_start=False)
    J2, g2, info = dev.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["converged"] and info["adjoint"]["converged"]
    close(g2.data, g0.data, 1e-5)
