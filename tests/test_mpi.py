"""The same numbers at 1, 2, 3 and 4 ranks.

Each case launches `mpiexec -n K python -m mpi4py SCRIPT` (an exception on
one rank aborts them all) with a timeout, so a hang fails instead of blocking.
"""

import os

import numpy as np
import pytest

import layerparallel as lp

from conftest import MPI_READY, TESTS
from conftest import mpirun as _mpirun

pytestmark = [pytest.mark.mpi, pytest.mark.skipif(not MPI_READY,
                                                  reason="needs mpiexec and an MPI build")]


def mpirun(k, script, *args, timeout=120):
    _mpirun(k, os.path.join(TESTS, "mpi", script), *args, timeout=timeout)


def serial_reference(N):
    X, Y = lp.datasets.peaks(n=150, seed=3)
    net = lp.ODEResNet(2, 6, N, 5, T=4.0, activation="tanh", gamma_tik=1e-3, gamma_ddt=1e-2,
                       gamma_out=1e-3)
    theta = net.init("glorot", seed=2)
    J, g = net.loss_and_grad(theta, X, Y)
    return J, g.data, net.forward(theta, X)


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
@pytest.mark.parametrize("N, cfactor, cycle, storage", [
    (37, 4, "V", "all"), (50, 8, "F", "C"), (64, 2, "F", "all"), (41, 3, "V", "C"),
])
def test_same_numbers_at_every_rank_count(tmp_path, ranks, N, cfactor, cycle, storage):
    out = tmp_path / "out.npz"
    mpirun(ranks, "resnet_ranks.py", out, N, cfactor, cycle, storage)
    J0, g0, U0 = serial_reference(N)
    d = np.load(out)
    # serial propagation across the ranks (a one-level solve)
    assert abs(d["J_serial"] - J0) <= 1e-12 * abs(J0)
    np.testing.assert_allclose(d["g_serial"], g0, rtol=0, atol=1e-13 * np.abs(g0).max())
    # MGRIT to tolerance
    assert abs(d["J"] - J0) <= 1e-9 * abs(J0)
    assert np.linalg.norm(d["g"] - g0) <= 1e-9 * np.linalg.norm(g0)
    assert np.linalg.norm(d["U"] - U0) <= 1e-9 * np.linalg.norm(U0)
    assert abs(float(d["norm"]) - np.linalg.norm(g0)) <= 1e-9 * np.linalg.norm(g0)


@pytest.mark.parametrize("case, expected", [("diverge", None), ("raise", "KeyError")])
def test_failures_reach_every_rank(tmp_path, case, expected):
    mpirun(3, "failure_ranks.py", tmp_path, case, timeout=60)
    seen = [(tmp_path / f"rank{r}.txt").read_text() for r in range(3)]
    if expected is None:
        assert seen == ["MGRITDiverged"] * 3
    else:  # the failing rank re-raises its own error, the others learn of it
        assert seen.count(expected) == 1 and seen.count("MGRITDiverged") == 2


@pytest.mark.parametrize("mode", ["serial", "mgrit", "one_shot"])
def test_training_gives_the_same_weights_at_one_and_two_ranks(tmp_path, mode):
    runs = {}
    for k in (1, 2, 3):
        out = tmp_path / f"k{k}.npz"
        mpirun(k, "train_ranks.py", out, mode)
        runs[k] = np.load(out)
    for k in (2, 3):
        np.testing.assert_allclose(runs[k]["theta"], runs[1]["theta"], rtol=0, atol=1e-10)
    assert runs[1]["loss"][-1] < 0.8 * runs[1]["loss"][0]


def test_nested_iteration_gives_the_same_numbers_at_one_and_two_ranks(tmp_path):
    runs = {}
    for k in (1, 2):
        out = tmp_path / f"k{k}.npz"
        mpirun(k, "nested_ranks.py", out)
        runs[k] = np.load(out)
    np.testing.assert_allclose(runs[2]["theta"], runs[1]["theta"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(runs[2]["loss"], runs[1]["loss"], rtol=1e-12)
