"""The one-device crossover model (lp.mgrit.gpu_time / gpu_crossover) on
given inputs: hand-counted sweeps, limits, and the crossover search."""

import pytest

import layerparallel as lp
from layerparallel._gpu_model import _counts


def test_batched_step_counts_follow_the_engine():
    # N = 8, c = 2: intervals start at 0, 2, 4, 6, 8; step 1 of the four full
    # ones, then their four C-point candidates (none past N).
    assert _counts(8, 2, True) == [4, 4]
    assert _counts(8, 2, False) == [4]
    # N = 37, c = 4: ten intervals (the last one, 36..37, has one F-point).
    assert _counts(37, 4, True) == [10, 9, 9, 9]
    assert _counts(37, 4, False) == [10, 9, 9]


def test_launch_bound_two_level_cycle_by_hand():
    # Launch-bound (device times 0, launch 1 s): a batched step costs 3, a
    # batched update 2. Level 0 relaxation + residual: 2 steps + update + sync
    # = 9; the cycle: injection + FAS 4, coarse steps 3, coarsest graph 1,
    # correction 2, F-relaxation 3 = 13. One iteration: 2 x 9 + 13 = 31.
    m = lp.mgrit.gpu_time(8, 1, launch=1.0, step_time=(0.0, 0.0), cfactor=2, max_levels=2,
                          relax="F")
    assert m["levels"] == 2
    assert m["mgrit"] == pytest.approx(31.0)
    assert m["serial"] == pytest.approx(1.0)  # one graph launch, device time 0
    # Measured host costs replace the launch counts: a batched step at 6 s
    # makes level 0's sweeps 2 x 6 + 2 + 1 = 15 and the cycle 4 + 6 + 1 + 2 + 6
    # = 19, so 2 x 15 + 19 = 49.
    m = lp.mgrit.gpu_time(8, 1, launch=1.0, step_time=(0.0, 0.0), cfactor=2, max_levels=2,
                          relax="F", step_host=6.0, update_host=2.0)
    assert m["mgrit"] == pytest.approx(49.0)


def test_one_level_is_the_serial_graph():
    m = lp.mgrit.gpu_time(100, 3, launch=5e-6, step_time=(1e-5, 1e-7), max_levels=1)
    assert m["mgrit"] == pytest.approx(m["serial"])
    assert m["speedup"] == pytest.approx(1.0)


def test_device_bound_steps_never_pay():
    # No launch cost and a batch as dear per interval as a serial step: MGRIT
    # does more work than serial propagation, so it never wins.
    assert lp.mgrit.gpu_crossover(5, 0.0, (0.0, 1e-5), serial_step=1e-5) is None


def test_latency_bound_steps_pay_past_a_depth():
    # Cheap intervals in a batch (t1 << t0): the speedup grows with N.
    args = dict(iterations=6, launch=4e-6, step_time=(1e-5, 1e-8))
    speedups = [lp.mgrit.gpu_time(N, **args)["speedup"] for N in (256, 1024, 4096, 16384)]
    assert speedups == sorted(speedups)
    N = lp.mgrit.gpu_crossover(**args)
    assert N is not None
    assert lp.mgrit.gpu_time(N, **args)["speedup"] > 1.0
    assert lp.mgrit.gpu_time(N // 2, **args)["speedup"] <= 1.0
    # a depth list and iterations as a function of N
    assert lp.mgrit.gpu_crossover(lambda n: 6, 4e-6, (1e-5, 1e-8), n_steps=[N, 2 * N]) == N


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="step_time"):
        lp.mgrit.gpu_time(64, 5, 1e-6, 1e-5)
    with pytest.raises(ValueError):
        lp.mgrit.gpu_time(64, 5, -1e-6, (1e-5, 0.0))
    with pytest.raises(ValueError):
        lp.mgrit.gpu_time(0, 5, 1e-6, (1e-5, 0.0))
    with pytest.raises(ValueError, match="step_host"):
        lp.mgrit.gpu_time(64, 5, 1e-6, (1e-5, 0.0), step_host=-1.0)
