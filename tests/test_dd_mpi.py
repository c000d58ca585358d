"""Process grids under mpiexec (oversubscribed is fine): every method on grids
1x2, 2x1 and 2x2 gives the one-rank numbers (serial and MGRIT to rounding or
tolerance; the decomposition methods equal a one-rank run of the same
subdomains / micro-batches), and resumes from checkpoints exactly."""

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import MPI_READY, MPIEXEC, tool_env

pytestmark = [pytest.mark.mpi, pytest.mark.slow,
              pytest.mark.skipif(not MPI_READY, reason="needs mpiexec and an MPI build")]
HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, "mpi"))
import dd_ranks  # noqa: E402


def mpirun(k, *args, timeout=240):
    """mpiexec -n k ARGS (a whole command line), not checked: some cases must fail."""
    cmd = [MPIEXEC, "-n", str(k), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=tool_env())


@pytest.mark.parametrize("layers, data", [(1, 2), (2, 1), (2, 2)])
def test_grids_give_the_one_rank_numbers(tmp_path, layers, data):
    out = tmp_path / "out.npz"
    proc = mpirun(layers * data, sys.executable, "-m", "mpi4py",
                  os.path.join(HERE, "mpi", "dd_ranks.py"), out, layers, data, tmp_path / "ck")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = np.load(out)
    for method in dd_ranks.METHODS:
        parts = {"pd": layers, "sapts": data}.get(method)
        theta, loss = dd_ranks.run(method, 1, 1, parts)
        np.testing.assert_allclose(d[f"{method}_theta"], theta, rtol=0, atol=1e-10,
                                   err_msg=method)
        np.testing.assert_allclose(d[f"{method}_loss"], loss, rtol=1e-11, err_msg=method)
    assert loss[-1] < loss[0]
    for method in dd_ranks.RESUMED:
        np.testing.assert_array_equal(d[f"{method}_resumed"], d[f"{method}_theta"])


def test_cli_on_a_grid_and_a_grid_that_does_not_fit(tmp_path):
    log = tmp_path / "run.jsonl"
    base = [sys.executable, "-m", "layerparallel", "train", "--problem", "peaks", "--samples",
            "200", "--layers", "8", "--iterations", "4", "--no-progress"]
    proc = mpirun(4, *base, "--method", "dd-params", "--grid", "2x2", "--log", log)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2x2 grid" in proc.stdout and len(log.read_text().splitlines()) == 4
    proc = mpirun(4, *base, "--grid", "3x2", timeout=60)
    assert proc.returncode == 2
    assert "a 3x2 grid needs 6 ranks, running on 4" in proc.stderr
