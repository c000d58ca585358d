"""The parts of the GPU work that run without a device: the message-path
choice (CUDA-aware MPI detection and its overrides), the graphs option, the
App contract checker on a net's apps from Python, and --device in the CLI."""

import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import devices
from layerparallel.contract import check_apps


def test_mpi_cuda_support_is_an_answer_or_none():
    answer = devices.cuda_aware_mpi()
    assert answer in (True, False, None)
    # the mpich wheel this package is tested with has no CUDA support
    assert answer is not True or lp._core.cuda_built


@pytest.mark.parametrize("option, env, query, path", [
    ("staged", {}, lambda: True, "staged"),
    ("direct", {}, lambda: False, "direct"),
    ("auto", {}, lambda: True, "direct"),
    ("auto", {}, lambda: False, "staged"),
    ("auto", {}, lambda: None, "staged"),
    ("auto", {"LP_CUDA_AWARE_MPI": "1"}, lambda: False, "direct"),
    ("auto", {"LP_CUDA_AWARE_MPI": "0"}, lambda: True, "staged"),
    ("auto", {"LP_CUDA_AWARE_MPI": "auto"}, lambda: True, "direct"),
    ("staged", {"LP_CUDA_AWARE_MPI": "1"}, lambda: True, "staged"),  # the option decides
])
def test_message_path(option, env, query, path):
    assert devices.message_path(option, environ=env, query=query) == path


def test_message_path_rejects_bad_values():
    with pytest.raises(ValueError, match="device_messages"):
        devices.message_path("pinned", environ={})
    with pytest.raises(ValueError, match="LP_CUDA_AWARE_MPI"):
        devices.message_path("auto", environ={"LP_CUDA_AWARE_MPI": "maybe"})
    with pytest.raises(ValueError, match="device_messages"):
        lp.MGRIT(device_messages="pinned")


def test_device_messages_option_reaches_the_engine_only_with_ranks(monkeypatch):
    monkeypatch.setenv("LP_CUDA_AWARE_MPI", "1")
    mg = lp.MGRIT(device_messages="auto")
    assert mg.options()["device_messages"] is False  # one rank: no messages at all
    assert mg.replace(cfactor=2).device_messages == "auto"


def test_graphs_option_and_host_solves_never_replay():
    with pytest.raises(ValueError, match="graphs"):
        lp.MGRIT(graphs="yes")
    X, Y = lp.datasets.peaks(n=40, seed=0)
    net = lp.ODEResNet(2, 4, 12, 5)
    theta = net.init("glorot", seed=0)
    serial = lp.MGRIT(max_levels=1, tol=None, max_iter=1)
    for _ in range(3):
        U, info = net.forward(theta, X, solver=serial)
        assert info["replays"] == 0  # graphs exist on a device only
    np.testing.assert_array_equal(U, net.forward(theta, X))


@pytest.mark.parametrize("activation", ["relu", "tanh", "smoothrelu"])
@pytest.mark.parametrize("spacing", [1, 3])
def test_contract_checker_on_the_net_apps(activation, spacing):
    net = lp.ODEResNet(2, 5, 12, 3, activation=activation)
    found = check_apps(net, net.init("glorot", seed=1), batch=20, spacing=spacing)
    assert found == {"forward": [], "adjoint": []}


def test_contract_checker_arguments():
    net = lp.ODEResNet(2, 5, 12, 3)
    theta = net.init("glorot", seed=1)
    with pytest.raises(ValueError, match="batch"):
        check_apps(net, theta, batch=0)
    with pytest.raises(ValueError, match="from < to"):
        check_apps(net, theta, calls=[(0, 5, 20)])
    with pytest.raises(ValueError, match="theta"):
        check_apps(net, np.zeros(3))


@pytest.mark.skipif(lp.cuda_available(), reason="checks the error without a usable device")
@pytest.mark.parametrize("command", [["train", "--iterations", "1", "--layers", "4"],
                                     ["evaluate", "model.npz", "--problem", "peaks"]])
def test_cli_device_cuda_without_a_device_is_one_clear_error(command, tmp_path):
    net = lp.ODEResNet(2, 4, 4, 5)
    lp.save(tmp_path / "model.npz", net, net.init("glorot", seed=0))
    proc = subprocess.run([sys.executable, "-m", "layerparallel", *command, "--device", "cuda"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("layerparallel: error: device='cuda'"), last


def test_cli_device_value_is_checked(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "layerparallel", "train", "--device", "gpu"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0 and "--device" in proc.stderr
