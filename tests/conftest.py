"""Shared fixtures and the one way tests launch ``mpiexec``.

Tests that take more than a few seconds carry ``@pytest.mark.slow``; tests
that launch mpiexec carry ``@mpi_test`` (the ``mpi`` marker plus a skip when
there is no mpiexec or the core was built without MPI). The fast suite is
``python -m pytest -m "not slow and not mpi"``.
"""

import importlib.metadata
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)


def find_mpiexec():
    """The mpiexec of the MPI this Python's mpi4py uses: the mpich wheel's own
    (its real path, not a version manager's shim that would change PATH), else
    one next to the interpreter, else the first on PATH; None when there is none."""
    try:
        dist = importlib.metadata.distribution("mpich")
        for f in dist.files or ():
            if f.name == "mpiexec" and f.parent.name == "bin":
                path = os.path.realpath(dist.locate_file(f))
                if os.access(path, os.X_OK):
                    return path
    except importlib.metadata.PackageNotFoundError:
        pass
    return (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
            or shutil.which("mpiexec"))


MPIEXEC = find_mpiexec()
MPI_READY = MPIEXEC is not None and lp._core.mpi_available


def mpi_test(f):
    """Mark a test that launches mpiexec; skip it where that cannot work."""
    f = pytest.mark.skipif(not MPI_READY, reason="needs mpiexec and an MPI build")(f)
    return pytest.mark.mpi(f)


def tool_env(**extra):
    """The environment for subprocesses: one thread per rank, and a PATH on
    which ``python`` is this interpreter and ``mpiexec`` the one above."""
    dirs = [os.path.dirname(sys.executable)]
    if MPIEXEC:
        dirs.append(os.path.dirname(MPIEXEC))
    path = os.pathsep.join(dirs + [os.environ.get("PATH", "")])
    return dict(os.environ, OMP_NUM_THREADS="1", PATH=path, **extra)


def mpirun(k, *args, timeout=120, check=True, cwd=None):
    """``mpiexec -n k python -m mpi4py ARGS`` (an exception on one rank aborts
    all of them) with a timeout, so a hang fails instead of blocking. ARGS is a
    script path and its arguments, or ``-m module ...``. With ``check`` a
    nonzero status fails the test with the output; returns the CompletedProcess."""
    cmd = [MPIEXEC, "-n", str(k), sys.executable, "-m", "mpi4py", *map(str, args)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=tool_env(),
                          cwd=cwd)
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def finite_difference_entries(net, theta, X, Y, entries, eps=1e-6):
    """Central differences of net.loss in the given entries of theta (an array)."""
    t = theta.data.copy()
    fd = np.empty(len(entries))
    for k, i in enumerate(entries):
        old = t[i]
        t[i] = old + eps
        jp = net.loss(t, X, Y)
        t[i] = old - eps
        jm = net.loss(t, X, Y)
        t[i] = old
        fd[k] = (jp - jm) / (2 * eps)
    return fd


def finite_difference_grad(net, theta, X, Y, eps=1e-6):
    """Central differences of net.loss in every entry of theta, as lp.Params."""
    g = finite_difference_entries(net, theta, X, Y, range(theta.data.size), eps)
    return lp.Params(theta.layout, g)
