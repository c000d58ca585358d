"""The core's own threads and Python threads sharing one network."""

import os
import re
import subprocess
import sys
import threading

import numpy as np
import pytest

import layerparallel as lp


def test_results_do_not_depend_on_core_threads():
    X, Y = lp.datasets.peaks(n=777, seed=1)
    net = lp.ODEResNet(2, 16, 40, 5, activation="tanh", gamma_tik=1e-3)
    theta = net.init("glorot", seed=1)
    old = lp.get_num_threads()
    try:
        results = []
        for t in (1, 2, 3):
            lp.set_num_threads(t)
            J, g = net.loss_and_grad(theta, X, Y)
            results.append((J, g.data.copy(), net.forward(theta, X)))
    finally:
        lp.set_num_threads(old)
    for J, g, U in results[1:]:
        assert J == pytest.approx(results[0][0], rel=1e-14)
        np.testing.assert_allclose(g, results[0][1], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(U, results[0][2], rtol=1e-13)


@pytest.mark.slow
def calls_that_differ_when_concurrent(call, expected, repeats):
    """Runs call(i) `repeats` times on one Python thread per i at once; the i
    whose result differed from expected[i] (arrays compared exactly)."""
    wrong = []

    def work(i):
        for _ in range(repeats):
            got = call(i)
            same = np.array_equal(got, expected[i]) if isinstance(got, np.ndarray) \
                else got == expected[i]
            if not same:
                wrong.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(expected))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return wrong


def test_python_threads_share_a_network_safely():
    net = lp.ODEResNet(2, 16, 64, 5, activation="tanh")
    theta = net.init("glorot", seed=0)
    inputs = [lp.datasets.peaks(n=50 + 37 * i, seed=i)[0] for i in range(4)]
    expected = [net.forward(theta, X) for X in inputs]
    assert not calls_that_differ_when_concurrent(lambda i: net.forward(theta, inputs[i]),
                                                 expected, 30)


def test_python_threads_solve_different_networks_by_mgrit_at_once():
    """MGRIT solves of different networks from several Python threads at once
    (each engine's residual sums are its own thread's) give the residuals and
    losses of the same solves one after the other."""
    X, Y = lp.datasets.peaks(n=300, seed=1)
    nets = [lp.ODEResNet(2, 6, 16 + 4 * i, 5, activation="tanh") for i in range(3)]
    thetas = [net.init("glorot", seed=i) for i, net in enumerate(nets)]
    mg = lp.MGRIT(cfactor=2, tol=None, max_iter=3, warm_start=False, batch_block=0)

    def solve(i):
        J, _, info = nets[i].loss_and_grad(thetas[i], X, Y, solver=mg)
        return J, info["forward"]["residuals"] + info["adjoint"]["residuals"]
    expected = [solve(i) for i in range(3)]
    assert not calls_that_differ_when_concurrent(solve, expected, 20)


def test_tiny_T_is_refused():
    with pytest.raises(ValueError, match="T"):
        lp.ODEResNet(3, 6, 2, 4, T=5e-324)


def test_set_num_threads_validates():
    with pytest.raises(ValueError, match="n"):
        lp.set_num_threads(0)


def test_forced_blocks_give_the_same_numbers():
    """Every row-block and per-layer path split over threads (threshold 0) agrees
    with one thread, dense and convolutional; the measured threshold comes back afterwards."""
    from layerparallel import _core

    X, Y = lp.datasets.peaks(n=101, seed=2)
    old = lp.get_num_threads()
    try:
        out = []
        for threads, flops in ((1, -1.0), (3, 0.0)):
            lp.set_num_threads(threads)
            _core.set_min_parallel_flops(flops)
            for w in (8, 130):  # fused and separate gradient passes
                net = lp.ODEResNet(2, w, 8, 5, activation="tanh")
                theta = net.init("glorot", seed=3)
                J, g = net.loss_and_grad(theta, X, Y)
                mg = lp.MGRIT(cfactor=2, max_iter=2, tol=None, warm_start=False)
                Jm, gm, _ = net.loss_and_grad(theta, X, Y, solver=mg)
                out.append((J, g.data.copy(), Jm, gm.data.copy()))
            conv = lp.ConvODEResNet((1, 6, 6), 4, 6, 5)  # images: blocks of >= 8 rows
            theta = conv.init("he", seed=3)
            Xi = np.repeat(X[:, :1, None, None], 36, axis=2).reshape(-1, 1, 6, 6) * np.linspace(
                0.5, 1.5, 36).reshape(1, 1, 6, 6)
            J, g = conv.loss_and_grad(theta, Xi, Y)
            mg = lp.MGRIT(cfactor=2, max_iter=2, tol=None, warm_start=False)
            Jm, gm, _ = conv.loss_and_grad(theta, Xi, Y, solver=mg)
            out.append((J, g.data.copy(), Jm, gm.data.copy()))
    finally:
        _core.set_min_parallel_flops(-1.0)
        lp.set_num_threads(old)
    for a, b in zip(out[:3], out[3:]):
        assert a[0] == pytest.approx(b[0], rel=1e-13)
        np.testing.assert_allclose(a[1], b[1], rtol=1e-11, atol=1e-14)
        assert a[2] == pytest.approx(b[2], rel=1e-13)
        np.testing.assert_allclose(a[3], b[3], rtol=1e-11, atol=1e-14)
    lp.set_num_threads(2)
    try:
        assert _core.min_parallel_flops(2) > 0  # measured, not the forced value
    finally:
        lp.set_num_threads(old)


def test_default_threads_from_affinity_quota_and_node_ranks(tmp_path, monkeypatch):
    from layerparallel import _threads

    assert _threads.default_threads(1, cpus=8, quota=None) == 8
    assert _threads.default_threads(1, cpus=8, quota=3) == 3
    assert _threads.default_threads(4, cpus=8, quota=None) == 2
    assert _threads.default_threads(16, cpus=8, quota=None) == 1
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    assert _threads.cgroup_cpus(str(tmp_path)) == 3
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert _threads.cgroup_cpus(str(tmp_path)) is None
    assert _threads.cgroup_cpus(str(tmp_path / "missing")) is None
    for k in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"):
        monkeypatch.delenv(k, raising=False)
    assert _threads.launcher_node_ranks(6) == 6  # no hint: assume one node
    monkeypatch.setenv("MPI_LOCALNRANKS", "2")
    assert _threads.launcher_node_ranks(6) == 2
    assert 1 <= lp.default_num_threads() <= (os.cpu_count() or 1)


def test_openmp_waits_passively_by_default():
    """The OpenMP runtime starts with passive waits unless the user chose a
    policy, and the environment is left as the user had it."""
    code = ("import os, layerparallel; "
            "print('policy-left-in-env' if 'OMP_WAIT_POLICY' in os.environ else 'clean')")
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env["OMP_DISPLAY_ENV"] = "TRUE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "clean" in out.stdout
    if "OMP_WAIT_POLICY" not in out.stderr and "OMP_WAIT_POLICY" not in out.stdout:
        pytest.skip("this OpenMP runtime does not display its settings")
    shown = out.stdout + out.stderr
    assert re.search(r"OMP_WAIT_POLICY\s*=\s*'PASSIVE'", shown), shown
    env["OMP_WAIT_POLICY"] = "active"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert re.search(r"OMP_WAIT_POLICY\s*=\s*'ACTIVE'", out.stdout + out.stderr)


def test_cache_sizes_of_this_machine():
    from layerparallel import _core

    l1, l2 = _core.cache_bytes(1), _core.cache_bytes(2)
    assert 4096 <= l1 <= l2 <= 1 << 30


@pytest.mark.parametrize("model", ["dense", "conv"])
def test_sweeps_split_where_the_work_pays(model):
    """With two threads and a threshold far below one block's work, the serial
    sweeps and the MGRIT steps of dense and convolutional nets run their row
    blocks in parallel; with a threshold above the whole work they do not (the
    flops per row that decide it are those of the layer's products)."""
    from layerparallel import _core

    if model == "dense":
        X, Y = lp.datasets.peaks(n=64, seed=2)
        net = lp.ODEResNet(2, 64, 8, 5, activation="tanh")  # 64 rows x 8 layers x 8 kflop
    else:
        rng = np.random.default_rng(0)
        X = rng.uniform(size=(32, 1, 8, 8))
        Y = np.eye(3)[rng.integers(0, 3, size=32)]
        net = lp.ConvODEResNet((1, 8, 8), 8, 8, 3)  # 32 images x 8 layers x 75 kflop
    theta = net.init("he", seed=1)
    mg = lp.MGRIT(cfactor=2, max_iter=1, tol=None, warm_start=False)
    old = lp.get_num_threads()
    counts = {}
    try:
        lp.set_num_threads(2)
        for flops in (1e4, 1e12):
            _core.set_min_parallel_flops(flops)
            before = _core.row_block_regions()
            net.loss_and_grad(theta, X, Y)
            serial = _core.row_block_regions() - before
            net.loss_and_grad(theta, X, Y, solver=mg)
            counts[flops] = (serial, _core.row_block_regions() - before - serial)
    finally:
        _core.set_min_parallel_flops(-1.0)
        lp.set_num_threads(old)
    assert counts[1e4][0] >= 2 and counts[1e4][1] >= 2, counts  # forward and backward
    assert counts[1e12] == (0, 0), counts


def test_threshold_feedback_is_kept_per_kind_of_region():
    """A kind of region (its work per row) that gains nothing from a team
    raises its own scale on the threshold, not that of other kinds: a narrow
    sweep that does not scale must not keep a wide one serial."""
    from layerparallel import _core

    small, large = 1234.5, 98765.5  # work per row of two kinds no real sweep has
    try:
        _core.set_min_parallel_flops(-1.0)  # no forced threshold, no feedback yet
        assert _core.threshold_scale(small) == _core.threshold_scale(large) == 1.0
        # each kind's first region runs on one thread, to measure its own rate
        assert _core.needs_calibration(small) and _core.needs_calibration(large)
        _core._report_region(small, 1e6, 1e-3, 1)  # one thread: 1e9 flop/s
        assert not _core.needs_calibration(small) and _core.needs_calibration(large)
        _core._report_region(small, 1e6, 1e-3, 2)  # a team, no faster
        assert _core.threshold_scale(small) == 2.0
        assert _core.threshold_scale(large) == 1.0
        _core._report_region(large, 1e6, 1e-3, 1)
        _core._report_region(large, 1e6, 0.5e-3, 2)  # a team, twice as fast
        assert _core.threshold_scale(large) == 1.0
        _core._report_region(small, 1e6, 0.5e-3, 2)  # the small kind recovers
        assert _core.threshold_scale(small) == pytest.approx(1.4)
        _core.set_min_parallel_flops(-1.0)
        assert _core.threshold_scale(small) == 1.0 and _core.needs_calibration(small)
        _core.set_min_parallel_flops(1e6)  # a forced threshold: no feedback, no calibration
        assert not _core.needs_calibration(large)
    finally:
        _core.set_min_parallel_flops(-1.0)
