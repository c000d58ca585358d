"""Failure semantics on one rank: checkpoint sets, directory checks, file
permissions, NaN from a propagator, a stalled line search, runs too large
for memory. (The same under mpiexec: test_faults.py.)"""

import os
import stat
import warnings

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import checkpoint as ckpt
from layerparallel import cli

SMALL = ["--width", "4", "--layers", "8", "--samples", "200", "--no-progress", "--threads", "1"]


@pytest.fixture
def small():
    X, Y = lp.datasets.peaks(n=40, seed=2)
    net = lp.ODEResNet(2, 3, 6, 5, T=2.0)
    return net, X, Y


def train(net, X, Y, d, iterations, resume=False, theta=None, **kw):
    theta = net.init(seed=0) if theta is None else theta
    lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=iterations, checkpoint=d,
             checkpoint_every=1, resume=resume, **kw)
    return theta


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda m: os.umask(m)
    os.umask(old)


def test_checkpoint_set_is_committed_and_older_sets_removed(tmp_path, small):
    d = str(tmp_path / "ck")
    train(*small, d, 3)
    assert sorted(os.listdir(d)) == ["checkpoint.3.rank0.npz", "checkpoint.json"]
    manifest = (tmp_path / "ck" / "checkpoint.json").read_text()
    assert '"iteration": 3' in manifest and '"ranks": 1' in manifest


def test_resume_takes_the_newest_complete_set_and_equals_the_full_run(tmp_path, small):
    net, X, Y = small
    full = train(net, X, Y, str(tmp_path / "full"), 5)
    d = str(tmp_path / "ck")
    train(net, X, Y, d, 2)
    # an uncommitted file of a later iteration that a kill left behind, and a temporary
    with open(os.path.join(d, ".checkpoint.3.rank0.npz.999.beef.tmp"), "wb") as f:
        f.write(b"partial")
    resumed = train(net, X, Y, d, 5, resume=True, theta=net.init("zeros"))
    np.testing.assert_array_equal(resumed.data, full.data)
    assert sorted(os.listdir(d)) == ["checkpoint.5.rank0.npz", "checkpoint.json"]


def test_orphaned_temporaries_are_removed_before_training(tmp_path, small):
    d = tmp_path / "ck"
    d.mkdir()
    orphan = d / ".checkpoint.7.rank0.npz.4242.cafe.tmp"
    orphan.write_bytes(b"partial")
    other = d / "notes.txt"  # not ours: kept
    other.write_text("keep")
    seen = []
    net, X, Y = small
    lp.train(net, net.init(seed=0), X, Y, lp.optim.GD(0.1), iterations=1, checkpoint=str(d),
             callback=lambda it, rec: seen.append(orphan.exists()))
    assert seen == [False] and other.exists()


@pytest.mark.parametrize("where", ["file", "under_file"])
def test_unusable_checkpoint_directory_is_refused_before_the_first_step(tmp_path, small, where):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    d = blocker if where == "file" else blocker / "ck"
    steps = []
    net, X, Y = small
    with pytest.raises(lp.CheckpointError, match=str(d)):
        lp.train(net, net.init(seed=0), X, Y, lp.optim.GD(0.1), iterations=2, checkpoint=str(d),
                 callback=lambda it, rec: steps.append(it))
    assert steps == []


@pytest.mark.parametrize("change, message", [
    ({"iteration": np.array(-5)}, "holds iteration -5, its name says 2"),
    ({"theta": None}, "holds NaN or Inf in theta"),
    ({"signature": np.array("{oops")}, "is corrupt"),
    ({"format": np.array(1)}, "has format 1"),
])
def test_inconsistent_checkpoint_contents_name_the_file(tmp_path, small, change, message):
    net, X, Y = small
    d = str(tmp_path / "ck")
    train(net, X, Y, d, 2)
    path = ckpt.path_for(d, 0, 2)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if "theta" in change:
        change = {"theta": np.where(np.arange(arrays["theta"].size) == 1, np.nan,
                                    arrays["theta"])}
    arrays.update(change)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(lp.CheckpointError, match=message) as err:
        train(net, X, Y, d, 3, resume=True)
    assert "checkpoint.2.rank0.npz" in str(err.value)


def test_truncated_checkpoint_names_the_file(tmp_path, small):
    net, X, Y = small
    d = str(tmp_path / "ck")
    train(net, X, Y, d, 2)
    path = ckpt.path_for(d, 0, 2)
    with open(path, "r+b") as f:
        f.truncate(100)
    with pytest.raises(lp.CheckpointError, match="checkpoint.2.rank0.npz is not an npz archive"):
        train(net, X, Y, d, 3, resume=True)


def test_checkpoints_and_logs_follow_the_umask(tmp_path, small, umask, capsys):
    net, X, Y = small
    for mask, expected in [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)]:
        umask(mask)
        d = tmp_path / f"ck{mask:o}"
        train(net, X, Y, str(d), 1)
        for name in os.listdir(d):
            assert mode(d / name) == expected, (name, oct(mode(d / name)))
        log = tmp_path / f"run{mask:o}.jsonl"
        assert cli.main(["train", *SMALL, "--iterations", "2", "--log", str(log)]) == 0
        assert mode(log) == expected
    capsys.readouterr()


def test_serial_solve_raises_on_nan_like_mgrit():
    def phi(level, step, w):
        return w * np.nan if step == 3 else 0.5 * w

    for solver in (None, lp.MGRIT(cfactor=2)):
        with pytest.raises(lp.MGRITDiverged, match="NaN or Inf at level 0, step 3"):
            lp.solve(phi, np.ones(2), 8, solver)


def test_stalled_line_search_is_reported(small):
    net, X, Y = small
    with pytest.warns(RuntimeWarning, match="line search found no step .* 1e\\+30"):
        h = lp.train(net, net.init(seed=0), X, Y, lp.optim.LBFGS(lr=1e30), iterations=2)
    assert h["line_search_failed"] == [True, True]
    assert h["step_size"] == [0.0, 0.0]


def test_working_line_search_records_nothing(small):
    net, X, Y = small
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        h = lp.train(net, net.init(seed=0), X, Y, lp.optim.LBFGS(), iterations=2)
    assert "line_search_failed" not in h


def test_cli_refuses_a_run_too_large_for_memory_before_allocating(capsys):
    status = cli.main(["train", "--layers", "1000000", "--width", "100", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert err[0].startswith("layerparallel: error: --layers 1000000 --width 100 needs at least")
    assert "GB" in err[0] and "available" in err[0]


def test_cli_refuses_a_checkpoint_path_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    status = cli.main(["train", *SMALL, "--iterations", "1", "--checkpoint", str(f)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [f"layerparallel: error: --checkpoint {f} exists and is not "
                                   "a directory"]


def test_warm_states_are_optional_in_checkpoints(tmp_path, small):
    net, X, Y = small
    sizes = {}
    for keep in (True, False):
        d = tmp_path / f"ck{keep}"
        train(net, X, Y, str(d), 2, solver=lp.MGRIT(cfactor=2), one_shot=1,
              checkpoint_warm_states=keep)
        sizes[keep] = (d / "checkpoint.2.rank0.npz").stat().st_size
        with np.load(d / "checkpoint.2.rank0.npz") as z:
            assert ("warm_states" in z.files) == keep
    assert sizes[False] < sizes[True]
    with pytest.warns(RuntimeWarning, match="no MGRIT warm states"):
        train(lp.ODEResNet(2, 3, 6, 5, T=2.0), X, Y, str(tmp_path / "ckFalse"), 3, resume=True,
              solver=lp.MGRIT(cfactor=2), one_shot=1)


def test_unreadable_manifest_names_the_file(tmp_path, small):
    net, X, Y = small
    d = tmp_path / "ck"
    train(net, X, Y, str(d), 2)
    (d / "checkpoint.json").write_text("{broken")
    with pytest.raises(lp.CheckpointError, match=r"manifest .*checkpoint\.json is unreadable"):
        train(net, X, Y, str(d), 3, resume=True)


def test_missing_file_of_the_committed_set_is_reported(tmp_path, small):
    net, X, Y = small
    d = tmp_path / "ck"
    train(net, X, Y, str(d), 2)
    (d / "checkpoint.2.rank0.npz").unlink()
    with pytest.raises(lp.CheckpointError, match=r"no checkpoint in .*ck"):
        train(net, X, Y, str(d), 3, resume=True)
