"""The build: the core links no absolute library paths, and a build that finds
no MPI stops with an error (naming LP_MPI=OFF, the way to ask for a
single-rank core) instead of silently building one."""

import os
import shutil
import subprocess
import sys

import pytest

import layerparallel as lp
from conftest import REPO


@pytest.mark.skipif(not shutil.which("readelf"), reason="needs readelf")
def test_core_runpath_is_origin_relative():
    out = subprocess.run(["readelf", "-d", lp._core.__file__], capture_output=True, text=True,
                         check=True).stdout
    paths = [line.split("[", 1)[1].rstrip("]").split(":") for line in out.splitlines()
             if "(RUNPATH)" in line or "(RPATH)" in line]
    for entry in (p for group in paths for p in group if p):
        assert entry.startswith("$ORIGIN"), out


def _configure(tmp_path, *defines):
    pybind11 = pytest.importorskip("pybind11")
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("needs cmake")
    cmd = [cmake, "-S", REPO, "-B", str(tmp_path / "b"), "-DLP_BENCH=OFF",
           f"-Dpybind11_DIR={pybind11.get_cmake_dir()}", f"-DPython_EXECUTABLE={sys.executable}",
           *defines]
    if shutil.which("ninja"):
        cmd += ["-G", "Ninja"]
    env = {k: v for k, v in os.environ.items() if k != "MPI_HOME"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.mark.slow
def test_build_without_mpi_fails_loudly(tmp_path):
    proc = _configure(tmp_path, "-DMPI_C_COMPILER=/nonexistent/mpicc")
    assert proc.returncode != 0
    assert "no MPI found" in proc.stderr and "LP_MPI=OFF" in proc.stderr, proc.stderr
