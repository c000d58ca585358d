"""lp.train: exact and one-shot training, LSGD, checkpoints."""

import os
import sys

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import checkpoint as ckpt
from layerparallel.train import least_squares_head


@pytest.fixture(scope="module")
def peaks_data():
    X, Y = lp.datasets.peaks(n=1500, seed=0)
    return lp.datasets.train_validation_split(X, Y, 0.2, seed=1)


@pytest.mark.slow
def test_one_shot_mgrit_training_matches_exact_training(peaks_data):
    X, Y, Xv, Yv = peaks_data
    net = lp.ODEResNet(2, 8, 32, 5, T=5.0, gamma_tik=1e-5)
    acc = {}
    for mode, kw in {"exact": {}, "one_shot": dict(solver=lp.MGRIT(cfactor=4, max_levels=2),
                                                   one_shot=2)}.items():
        theta = net.init("box", seed=0)
        h = lp.train(net, theta, X, Y, lp.optim.LBFGS(memory=5), iterations=60,
                     validation=(Xv, Yv), validate_every=20, **kw)
        acc[mode] = h.last("val_accuracy")
        if mode == "one_shot":
            assert h.last("mgrit_forward_iterations") == 2
            assert h.last("mgrit_adjoint_iterations") == 2
    assert acc["exact"] > 0.75
    # Within 3 points: one-shot follows its own trajectory (inexact gradients,
    # and loss-only line-search trials advance the warm-started solves).
    assert abs(acc["one_shot"] - acc["exact"]) <= 0.03 + 1e-12


@pytest.mark.slow
def test_exact_mgrit_training_equals_serial_training(peaks_data):
    X, Y, _, _ = peaks_data
    net = lp.ODEResNet(2, 6, 24, 5, T=4.0, activation="tanh")
    runs = []
    for solver in (None, lp.MGRIT(cfactor=4, tol=1e-12, max_iter=100)):
        theta = net.init("glorot", seed=1)
        lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=10, solver=solver)
        runs.append(theta.data.copy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=0, atol=1e-8)


@pytest.mark.parametrize("make_opt", [lambda: lp.optim.Adam(lr=1e-2),
                                      lambda: lp.optim.SGD(lr=0.05, momentum=0.9),
                                      lambda: lp.optim.GD(lr=0.2)])
def test_first_order_optimizers_decrease_the_loss_on_peaks(peaks_data, make_opt):
    X, Y, _, _ = peaks_data
    net = lp.ODEResNet(2, 8, 16, 5)
    theta = net.init("box", seed=0)
    h = lp.train(net, theta, X, Y, make_opt(), iterations=40)
    assert h["loss"][-1] < 0.9 * h["loss"][0]


def test_minibatches_are_deterministic_and_history_is_complete(peaks_data):
    X, Y, Xv, Yv = peaks_data
    net = lp.ODEResNet(2, 6, 8, 5)
    out = []
    for _ in range(2):
        theta = net.init("box", seed=0)
        h = lp.train(net, theta, X, Y, lp.optim.Adam(lr=1e-2), iterations=12, batch_size=100,
                     validation=(Xv, Yv), validate_every=5, seed=3)
        out.append((theta.data.copy(), h))
    assert np.array_equal(out[0][0], out[1][0])
    h = out[0][1]
    assert h["iteration"] == list(range(1, 13))
    assert h["val_iteration"] == [5, 10, 12]  # every validate_every and the last
    assert len(h["val_accuracy"]) == len(h["val_loss"]) == len(h["train_accuracy"]) == 3
    assert max(h["val_accuracy"]) <= 1.0
    records = h.records()
    assert [r["val_accuracy"] is not None for r in records] == [i in (5, 10, 12)
                                                                for i in range(1, 13)]
    assert all(t2 >= t1 for t1, t2 in zip(h["wall_time"], h["wall_time"][1:]))


def test_early_stop_on_target_accuracy(peaks_data):
    X, Y, Xv, Yv = peaks_data
    net = lp.ODEResNet(2, 8, 16, 5)
    theta = net.init("box", seed=0)
    h = lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=300, validation=(Xv, Yv),
                 validate_every=5, target_accuracy=0.6)
    assert h.stopped_early and h.last("val_accuracy") >= 0.6 and len(h["loss"]) < 300
    assert h.stop_reason == "target_accuracy"


def test_stop_on_the_gradient_norm(peaks_data):
    """grad_tol ends a run after the first step whose gradient norm is at most
    grad_tol, validated there; without it the same run goes on."""
    X, Y, Xv, Yv = peaks_data
    net = lp.ODEResNet(2, 4, 4, 5)
    runs = {}
    for tol in (None, 0.5):
        theta = net.init("he", seed=0)
        runs[tol] = lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=200,
                             validation=(Xv, Yv), validate_every=50, grad_tol=tol)
    full, stopped = runs[None], runs[0.5]
    n = len(stopped["loss"])
    assert stopped.stopped_early and stopped.stop_reason == "grad_tol" and n < 200
    assert stopped["grad_norm"][-1] <= 0.5 and min(stopped["grad_norm"][:-1]) > 0.5
    assert stopped["val_iteration"][-1] == n  # validated where it stopped
    assert full.stop_reason is None and len(full["loss"]) == 200
    assert full["loss"][:n] == stopped["loss"]  # the same steps up to the stop


def test_least_squares_head_is_optimal_and_lsgd_trains():
    X, Y = lp.datasets.sine(n=200, seed=0)
    net = lp.ODEResNet(1, 8, 8, 1, T=1.0, activation="relu", head="regression",
                       gamma_out=1e-6)
    theta = net.init("box", seed=0)
    least_squares_head(net, theta, X, Y)
    _, g = net.loss_and_grad(theta, X, Y)
    assert np.linalg.norm(g.W_out) < 1e-10 and np.linalg.norm(g.b_out) < 1e-10
    J0 = net.loss(theta, X, Y)
    h = lp.train(net, theta, X, Y, lp.optim.Adam(lr=1e-2), iterations=50, lsgd=True)
    assert h["loss"][-1] < 0.8 * J0
    with pytest.raises(ValueError, match="regression"):
        lp.train(lp.ODEResNet(2, 4, 4, 5), lp.ODEResNet(2, 4, 4, 5).init(), *lp.datasets.peaks(50),
                 lp.optim.GD(0.1), iterations=1, lsgd=True)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [None, 200])
@pytest.mark.parametrize("mode", ["serial", "one_shot"])
def test_resume_equals_uninterrupted_run(tmp_path, peaks_data, mode, batch_size):
    X, Y, Xv, Yv = peaks_data
    kw = dict(validation=(Xv, Yv), validate_every=4, batch_size=batch_size, seed=5)
    if mode == "one_shot":  # the MGRIT warm states are part of the checkpoint
        kw.update(solver=lp.MGRIT(cfactor=2), one_shot=1)
    # Fresh networks for each run: a network keeps its solvers' warm states.
    net = lp.ODEResNet(2, 6, 16, 5)
    theta_full = net.init("box", seed=0)
    full = lp.train(net, theta_full, X, Y, lp.optim.LBFGS(), iterations=16, **kw)
    d = str(tmp_path / "ck")
    net = lp.ODEResNet(2, 6, 16, 5)
    theta = net.init("box", seed=0)
    lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=8, checkpoint=d,
             checkpoint_every=4, **kw)
    net2 = lp.ODEResNet(2, 6, 16, 5)
    theta2 = net2.init("zeros")
    resumed = lp.train(net2, theta2, X, Y, lp.optim.LBFGS(), iterations=16, checkpoint=d,
                       resume=True, **kw)
    np.testing.assert_array_equal(theta2.data, theta_full.data)
    assert resumed["loss"] == full["loss"]
    assert resumed["val_accuracy"] == full["val_accuracy"]


def test_resume_takes_the_recorded_narrow_kernel_path(tmp_path, peaks_data):
    """Width 8 has two product paths, chosen per process by a timing. A resumed
    run takes the path the checkpoint recorded, whatever this process would
    choose (here: forced the other way), so its weights are the uninterrupted
    run's bit for bit; the caller's mode is back afterwards."""
    X, Y, _, _ = peaks_data
    mode = lp.narrow_kernels()

    def run(path, iterations, **kw):
        lp.set_narrow_kernels(path)
        net = lp.ODEResNet(2, 8, 12, 5, T=3.0)
        theta = net.init("he", seed=1)
        lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=iterations, **kw)
        return theta.data.copy()

    try:
        on, off = run("on", 6), run("off", 6)
        assert not np.array_equal(on, off)  # the paths differ in the last bits
        d = str(tmp_path / "ck")
        run("on", 3, checkpoint=d)
        resumed = run("off", 6, checkpoint=d, resume=True)
        np.testing.assert_array_equal(resumed, on)
        assert lp.narrow_kernels() == "off"
    finally:
        lp.set_narrow_kernels(mode)


def test_killed_during_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    d = str(tmp_path)
    sig = {"run": 1}
    ckpt.save(d, 0, signature=sig, iteration=3, theta=np.arange(5.0), optimizer_state={},
              rng_state={"rng": 1}, history=[])

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(d, 0, signature=sig, iteration=4, theta=np.zeros(5), optimizer_state={},
                  rng_state={"rng": 1}, history=[])
    monkeypatch.undo()
    state = ckpt.load(d, 0, sig)
    assert state["iteration"] == 3 and np.array_equal(state["theta"], np.arange(5.0))
    # the temporary of the killed write is gone, the committed set is intact
    assert sorted(os.listdir(d)) == ["checkpoint.3.rank0.npz", "checkpoint.json"]


def test_corrupt_missing_and_foreign_checkpoints_are_clear_errors(tmp_path):
    d = str(tmp_path)
    with pytest.raises(lp.CheckpointError, match="no checkpoint"):
        ckpt.load(d, 0, {})
    ckpt.save(d, 0, signature={"net": "a"}, iteration=1, theta=np.zeros(2), optimizer_state={},
              rng_state={}, history=[])
    with pytest.raises(lp.CheckpointError, match="different run"):
        ckpt.load(d, 0, {"net": "b"})
    with open(ckpt.path_for(d, 0, 1), "wb") as f:
        f.write(b"garbage")
    with pytest.raises(lp.CheckpointError, match="checkpoint.1.rank0.npz is not an npz archive"):
        ckpt.load(d, 0, {"net": "a"})


def test_train_validates_arguments(peaks_data):
    X, Y, _, _ = peaks_data
    net = lp.ODEResNet(2, 4, 4, 5)
    theta = net.init()
    opt = lp.optim.GD(0.1)
    with pytest.raises(ValueError, match="iterations"):
        lp.train(net, theta, X, Y, opt, iterations=0)
    with pytest.raises(ValueError, match="one_shot"):
        lp.train(net, theta, X, Y, opt, iterations=1, one_shot=2)
    with pytest.raises(ValueError, match="theta"):
        lp.train(net, theta.data, X, Y, opt, iterations=1)
    with pytest.raises(ValueError, match="batch_size"):
        lp.train(net, theta, X, Y, opt, iterations=1, batch_size=0)
    with pytest.raises(ValueError, match="resume"):
        lp.train(net, theta, X, Y, opt, iterations=1, resume=True)
    with pytest.raises(ValueError, match="target_accuracy"):
        lp.train(net, theta, X, Y, opt, iterations=1, target_accuracy=0.9)
    for bad in (0.0, -1.0, float("nan"), "small"):
        with pytest.raises(ValueError, match="grad_tol"):
            lp.train(net, theta, X, Y, opt, iterations=1, grad_tol=bad)


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_leaves_a_readable_checkpoint(tmp_path):
    """A process killed at a random moment while it keeps rewriting its checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    d = str(tmp_path)
    script = (
        "import numpy as np, sys\n"
        "from layerparallel import checkpoint as ckpt\n"
        "theta = np.random.default_rng(0).standard_normal(2_000_000)\n"
        "i = 0\n"
        "while True:\n"
        "    i += 1\n"
        "    ckpt.save(sys.argv[1], 0, signature={'run': 1}, iteration=i, theta=theta + i,\n"
        "              optimizer_state={'m': theta}, rng_state={}, history=[])\n"
        "    print(i, flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, d], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "1"  # one complete checkpoint exists
    time.sleep(0.37)  # somewhere in the middle of a later write
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = ckpt.load(d, 0, {"run": 1})
    it = state["iteration"]
    assert it >= 1
    expected = np.random.default_rng(0).standard_normal(2_000_000) + it
    assert np.array_equal(state["theta"], expected)


def test_optimizer_by_name(peaks_data):
    X, Y, _, _ = peaks_data
    net = lp.ODEResNet(2, 4, 4, 5)
    a, b = net.init("box", seed=0), net.init("box", seed=0)
    ha = lp.train(net, a, X, Y, "adam", iterations=3)
    hb = lp.train(net, b, X, Y, lp.optim.Adam(lr=lp.optim.DEFAULT_LR["adam"]), iterations=3)
    assert np.array_equal(a.data, b.data) and ha["loss"] == hb["loss"]
    with pytest.raises(ValueError, match="optimizer"):
        lp.train(net, a, X, Y, "newton", iterations=1)
    with pytest.raises(ValueError, match="optimizer"):
        lp.nested_train(lp.ODEResNet(2, 4, 8, 5), X, Y, "newton", levels=2, schedule=(1, 1))


def test_progress_without_tqdm_raises_before_training(peaks_data, monkeypatch):
    X, Y, _, _ = peaks_data
    monkeypatch.setitem(sys.modules, "tqdm", None)
    net = lp.ODEResNet(2, 4, 4, 5)
    theta = net.init("box", seed=0)
    before = theta.data.copy()
    with pytest.raises(ImportError, match="tqdm"):
        lp.train(net, theta, X, Y, "gd", iterations=2, progress=True)
    assert np.array_equal(theta.data, before)


def test_adapt_cycles_rule():
    from layerparallel.train import STALLED_TRIALS, adapt_cycles

    assert adapt_cycles(2, 2, 16, 31, True) == 4           # failed: doubled
    assert adapt_cycles(12, 2, 16, 31, True) == 16         # ... up to the most
    assert adapt_cycles(3, 2, 16, STALLED_TRIALS + 1, False) == 4  # stalled: one more
    assert adapt_cycles(3, 2, 16, 2, False) == 3           # a few trials: unchanged
    assert adapt_cycles(3, 2, 16, 1, False) == 2           # accepted at once: one fewer
    assert adapt_cycles(2, 2, 16, 1, False) == 2           # ... not below one_shot


def test_adaptive_one_shot_raises_cycles_after_failed_line_searches(peaks_data):
    """A line search that cannot succeed (no backtracking, Armijo with c1 ~ 1)
    doubles d each time, the history records d per step, and at the largest
    d the run warns instead of failing silently."""
    X, Y, _, _ = peaks_data
    net = lp.ODEResNet(2, 6, 16, 5)
    theta = net.init("box", seed=0)
    opt = lp.optim.LBFGS(c1=0.9999, max_backtracks=0)  # Armijo with c1 ~ 1 fails
    with pytest.warns(RuntimeWarning, match="line search failed"):
        h = lp.train(net, theta, X, Y, opt, iterations=4, solver=lp.MGRIT(cfactor=2),
                     one_shot=1, one_shot_max=4)
    assert h["line_search_failed"] == [True] * 4
    assert h["one_shot_cycles"] == [1, 2, 4, 4]
    assert h["mgrit_forward_iterations"][-1] == 4
    # Afterwards the network's solver runs the caller's cycles again.
    _, _, info = net.loss_and_grad(theta, X, Y, solver=lp.MGRIT(cfactor=2).replace(
        tol=None, rtol=None, max_iter=1, warm_start=True))
    assert info["forward"]["iterations"] == 1
    with pytest.raises(ValueError, match="one_shot_max"):
        lp.train(net, theta, X, Y, opt, iterations=1, solver=lp.MGRIT(), one_shot=3,
                 one_shot_max=2)
