"""Failures on some ranks only, at 2 and 3 ranks: every rank raises, none waits.

One mpiexec job per rank count runs every case of tests/mpi/fault_ranks.py in
turn (bad arguments, mismatched configurations and data, failing
propagators, corrupt, foreign, incomplete and unwritable checkpoints); the
timeout turns a hang into a failure that names the case it hung in.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import MPI_READY, MPIEXEC, mpirun, tool_env

pytestmark = [pytest.mark.mpi,
              pytest.mark.skipif(not MPI_READY, reason="needs mpiexec and an MPI build")]
SCRIPT = os.path.join(os.path.dirname(__file__), "mpi", "fault_ranks.py")


def everyone(kind, pattern):
    return lambda rank, size: (kind, pattern)


def one(who, kind, pattern, peer):
    """Rank ``who(size)`` raises its own error, the others ``peer`` naming it."""
    def expect(rank, size):
        r = who(size)
        if rank == r:
            return kind, pattern
        return peer, rf"rank {r} failed.*{kind}: .*{pattern}"
    return expect


FIRST = lambda size: 1  # noqa: E731
LAST = lambda size: size - 1  # noqa: E731

EXPECTED = {
    "nan_x_one_rank": one(LAST, "ValueError", "X contains NaN", "ValueError"),
    "rows_differ": everyone("RankMismatch", r"X shape \(rank 0 \(24, 2\), rank 1 \(20, 2\)"),
    "width_differs": everyone("RankMismatch", r"creating the ODEResNet: network"),
    "layers_differ": everyone("RankMismatch", r"creating the ODEResNet: network"),
    "cfactor_differs": everyone("RankMismatch", r"creating the MGRIT solver"),
    "bad_cfactor_one_rank": one(LAST, "ValueError", "cfactor must be >= 2", "ValueError"),
    "phi_wrong_shape": one(FIRST, "ValueError", "phi must return .* length 3, got \\(2,\\)",
                           "MGRITDiverged"),
    "phi_raises": one(LAST, "KeyError", "'step 10 failed'", "MGRITDiverged"),
    "phi_nan_serial": one(LAST, "MGRITDiverged", "phi returned NaN or Inf at level 0, step 10",
                          "MGRITDiverged"),
    "u0_nan_one_rank": one(FIRST, "ValueError", "u0 contains NaN", "ValueError"),
    "data_differs": everyone("RankMismatch", r"lp.train: Y \(rank 0 \w+, rank 1 \w+"),
    "init_seed_differs": everyone("RankMismatch", "opening layer and head"),
    "callback_fails_one_rank": one(lambda size: 0, "OSError", "disk full", "ValueError"),
    "nested_schedule_one_rank": one(LAST, "ValueError", "schedule needs 2 entries",
                                    "ValueError"),
    "steps_cycle_one_rank": one(FIRST, "ValueError", "cycle must be one of", "ValueError"),
    "steps_w0_one_rank": one(LAST, "ValueError", "w0 contains NaN or Inf", "ValueError"),
    "steps_phi_wrong_shape": one(FIRST, "ValueError", "phi must return .* length 3",
                                 "MGRITDiverged"),
    "engine_shape_check": lambda rank, size: (
        ("ValueError", "phi must return a 1-d float array of length 3") if rank == 1 else
        ("MGRITDiverged", r"a step failed on rank 1 \(see the error raised there\)")),
    "set_incomplete_on_one_rank": everyone(None, "same=True noted=True"),
    "missing_on_one_rank": everyone(
        "CheckpointError", r"no checkpoint in .* is complete on every rank \(rank 0 has "
                           r"checkpoint\.2\.rank0\.npz; rank 1 has no file"),
    "corrupt_on_one_rank": one(FIRST, "CheckpointError",
                               r"checkpoint\.2\.rank1\.npz is not an npz archive",
                               "CheckpointError"),
    "truncated_on_one_rank": one(LAST, "CheckpointError",
                                 r"checkpoint\.2\.rank\d\.npz is not an npz archive",
                                 "CheckpointError"),
    "foreign_on_one_rank": one(FIRST, "CheckpointError",
                               r"checkpoint\.2\.rank1\.npz is from a different run",
                               "CheckpointError"),
    "nan_theta_on_one_rank": one(FIRST, "CheckpointError",
                                 r"checkpoint\.2\.rank1\.npz holds NaN or Inf in theta",
                                 "CheckpointError"),
    "signature_not_json_on_one_rank": one(LAST, "CheckpointError",
                                          r"checkpoint\.2\.rank\d\.npz is corrupt",
                                          "CheckpointError"),
    "other_iteration_on_one_rank": one(FIRST, "CheckpointError",
                                       r"rank1\.npz holds iteration -5, its name says 2",
                                       "CheckpointError"),
    "not_a_directory": everyone("CheckpointError", "file exists and is not a directory"),
    "unwritable_on_one_rank": one(LAST, "CheckpointError",
                                  "blocker/ck is not writable: Not a directory", "ValueError"),
    "model_file_nan_theta_one_rank": one(LAST, "ValueError", "theta contains NaN or Inf",
                                         "ValueError"),
    "model_file_unwritable": one(lambda size: 0, "ValueError",
                                 "cannot write the model file .*missing/model.npz",
                                 "ValueError"),
}


# written by K ranks, resumed on K - 1 (and the reverse): redistributed, with a note
EXPECTED["fewer_ranks_resume"] = everyone(None, "close=True noted=True tidy=True")
EXPECTED["more_ranks_resume"] = everyone(None, "close=True noted=True tidy=True")


@pytest.mark.parametrize("ranks", [2, 3])
def test_no_hang_and_every_rank_raises(tmp_path, ranks):
    try:
        proc = mpirun(ranks, SCRIPT, tmp_path, timeout=90, check=False)
    except subprocess.TimeoutExpired:
        where = {p.name: p.read_text() for p in tmp_path.glob("started.rank*")}
        pytest.fail(f"the job hung (cases in progress: {where})")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(ranks)]
    assert set(seen[0]) == set(EXPECTED)
    problems = []
    for case, expect in EXPECTED.items():
        for r in range(ranks):
            kind, pattern = expect(r, ranks)
            got_kind, message = seen[r][case]
            if got_kind != kind or not re.search(pattern, str(message)):
                problems.append(f"{case} rank {r}: expected {kind} /{pattern}/, "
                                f"got {got_kind}: {message}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- killed ranks

KILL_SCRIPT = os.path.join(os.path.dirname(__file__), "mpi", "kill_train.py")


def _launch(ranks, out, ck, iterations, *extra):
    for stale in list(out.glob("pid.rank*")) + list(out.glob("progress")):
        stale.unlink()
    cmd = [MPIEXEC, "-n", str(ranks), sys.executable, "-m", "mpi4py", KILL_SCRIPT, str(out),
           str(ck), str(iterations), *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=tool_env(), start_new_session=True)


def _wait(proc, timeout=60):
    import signal

    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("a launch hung")
    return proc.returncode, out


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [2, 3])
def test_killed_rank_then_resume_gives_the_uninterrupted_weights(tmp_path, ranks):
    """SIGKILL of one rank between the ranks' checkpoint writes (the newest set is
    incomplete), then of one rank in the middle of training; each time resume."""
    import signal
    import time

    import numpy as np

    iterations = 7
    ref = tmp_path / "ref"
    ref.mkdir()
    status, out = _wait(_launch(ranks, ref, ref / "ck", iterations))
    assert status == 0, out
    out_dir, ck = tmp_path / "run", tmp_path / "run" / "ck"
    out_dir.mkdir()
    # the last rank dies just before writing its file of iteration 4
    status, _ = _wait(_launch(ranks, out_dir, ck, iterations, f"4:{ranks - 1}"))
    assert status != 0
    names = sorted(os.listdir(ck))
    assert f"checkpoint.4.rank{ranks - 1}.npz" not in names
    assert f"checkpoint.3.rank{ranks - 1}.npz" in names
    # resumed from 3, killed (rank 0) once it has taken a step or more
    proc = _launch(ranks, out_dir, ck, iterations)
    progress = out_dir / "progress"
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if progress.exists() and progress.read_text().strip() not in ("", "3"):
            os.kill(int((out_dir / "pid.rank0").read_text()), signal.SIGKILL)  # rank 0 wrote it
            break
        time.sleep(0.002)
    status, _ = _wait(proc)
    assert status != 0, "the run ended before it could be killed"
    status, out = _wait(_launch(ranks, out_dir, ck, iterations))
    assert status == 0, out
    np.testing.assert_array_equal(np.load(out_dir / "theta.npy"), np.load(ref / "theta.npy"))
