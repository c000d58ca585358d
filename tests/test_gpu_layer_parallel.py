"""Layer-parallel inside one GPU: interval-batched MGRIT on the device
converges to the serial result (1e-12 relative) for V/F cycles, c = 2/4/8 and
a depth no c divides, equals the host backend's MGRIT to rounding, and the
serial graph (CUDA graph replay) gives the unrecorded serial result. Skipped
without a device; LP_REQUIRE_GPU=1 turns the skip into a failure."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel.contract import check_apps

from gpu import require_gpu

RTOL = 1e-12
pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def gpu():
    require_gpu()


def close(a, b, rtol=RTOL):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(b)), 1e-300)
    assert np.max(np.abs(a - b)) <= rtol * scale, np.max(np.abs(a - b)) / scale


def nets(**kw):
    args = dict(n_in=2, width=8, n_layers=37, n_out=5, T=4.0, activation="tanh",
                gamma_tik=1e-3, gamma_ddt=1e-2, gamma_out=1e-3)
    args.update(kw)
    return lp.ODEResNet(**args), lp.ODEResNet(**args, device="cuda")


@pytest.mark.parametrize("cycle", ["V", "F"])
@pytest.mark.parametrize("c", [2, 4, 8])
def test_batched_mgrit_converges_to_serial_and_equals_the_host(cycle, c):
    X, Y = lp.datasets.peaks(n=300, seed=3)
    cpu, gpu = nets()
    theta = cpu.init("glorot", seed=2)
    # Cycles far past convergence: the fixed point is serial propagation.
    mg = lp.MGRIT(cfactor=c, cycle=cycle, tol=None, rtol=None, max_iter=40, warm_start=False)
    J_g, g_g, info = gpu.loss_and_grad(theta, X, Y, solver=mg)
    assert info["forward"]["batches"] > 0 and info["adjoint"]["batches"] > 0  # batched ran
    J_s, g_s = cpu.loss_and_grad(theta, X, Y)
    assert J_g == pytest.approx(J_s, rel=RTOL)
    close(g_g.data, g_s.data)
    U_g, _ = gpu.forward(theta, X, solver=mg)
    close(U_g, cpu.forward(theta, X))
    # the host backend's (unbatched) MGRIT with the same cycles, to rounding
    J_c, g_c, info_c = cpu.loss_and_grad(theta, X, Y, solver=mg)
    assert info_c["forward"]["batches"] == 0
    assert J_g == pytest.approx(J_c, rel=RTOL)
    close(g_g.data, g_c.data)


@pytest.mark.parametrize("storage", ["all", "C"])
def test_batched_and_unbatched_device_sweeps_agree(storage):
    X, Y = lp.datasets.peaks(n=300, seed=3)
    _, gpu = nets(n_layers=50)
    theta = gpu.init("glorot", seed=2)
    out = {}
    for batched in (False, True):
        mg = lp.MGRIT(cfactor=4, storage=storage, tol=None, rtol=None, max_iter=12,
                      warm_start=False, batch_intervals=batched)
        J, g, info = gpu.loss_and_grad(theta, X, Y, solver=mg)
        assert (info["forward"]["batches"] > 0) == batched
        out[batched] = (J, g.data.copy())
    assert out[True][0] == pytest.approx(out[False][0], rel=RTOL)
    close(out[True][1], out[False][1])


def test_serial_graph_replays_and_gives_the_same_result():
    X, Y = lp.datasets.peaks(n=500, seed=3)
    cpu, gpu = nets(n_layers=64)
    theta = cpu.init("glorot", seed=2)
    serial = lp.MGRIT(max_levels=1, tol=None, max_iter=1)
    plain = serial.replace(graphs=False)
    U_plain, info = gpu.forward(theta, X, solver=plain)
    assert info["replays"] == 0
    replays = []
    for _ in range(4):  # run, record, replay, replay
        U, info = gpu.forward(theta, X, solver=serial)
        replays.append(info["replays"])
        close(U, U_plain)
    assert replays[0] == 0 and replays[-1] == 1
    close(U, cpu.forward(theta, X))
    # the serial adjoint and gradients too (repeated evaluations replay)
    for _ in range(3):
        J, g = gpu.loss_and_grad(theta, X, Y)
    J_c, g_c = cpu.loss_and_grad(theta, X, Y)
    assert J == pytest.approx(J_c, rel=RTOL)
    close(g.data, g_c.data)


def test_a_new_net_never_replays_an_earlier_nets_recording():
    # Recordings outlive the nets; a later net of the same shapes may get the
    # same device addresses, but its other activation or depth T must show.
    X, Y = lp.datasets.peaks(n=500, seed=3)
    for activation, T in [("relu", 4.0), ("tanh", 4.0), ("tanh", 2.0), ("relu", 4.0)]:
        cpu, gpu = nets(n_layers=64, activation=activation, T=T)
        theta = cpu.init("glorot", seed=2)
        for _ in range(3):  # run, record, replay
            close(gpu.forward(theta, X), cpu.forward(theta, X))
            J, g = gpu.loss_and_grad(theta, X, Y)
        J_c, g_c = cpu.loss_and_grad(theta, X, Y)
        assert J == pytest.approx(J_c, rel=RTOL)
        close(g.data, g_c.data)
        del cpu, gpu


@pytest.mark.parametrize("spacing", [1, 4])
def test_contract_checker_on_the_device_apps(spacing):
    _, gpu = nets()
    found = check_apps(gpu, gpu.init("glorot", seed=1), batch=64, spacing=spacing)
    assert found == {"forward": [], "adjoint": []}


def test_device_timing_for_the_model():
    _, gpu = nets(width=32)
    t = lp._core._time_batched_step(gpu._net_config, gpu._device, 200, 64, reps=20)
    for key in ("batched_device", "batched_host", "single_device", "single_host",
                "update_device", "update_host", "launch"):
        assert t[key] > 0, key
    # one batch of 64 intervals costs less device time than 64 single steps
    assert t["batched_device"] < 64 * t["single_device"]
