"""Load the shared libraries the compiled core links before importing it.

- OpenBLAS from the scipy-openblas32 wheel: _core has an rpath into the
  installed wheel; loading it by path also covers other layouts (editable
  installs, relocated environments). A build against a system BLAS does not
  need it, so a missing wheel is not an error.
- MPI: importing mpi4py.MPI loads (and initializes) the MPI library that
  mpi4py was built for, the one _core must share. Without mpi4py the core
  runs on one rank.
"""

import ctypes
import os

try:
    import scipy_openblas32 as _sob
except ImportError:  # built with -DLP_BLAS=system
    _sob = None

if _sob is not None:
    _lib = os.path.join(_sob.get_lib_dir(), "lib" + _sob.get_library() + ".so")
    if os.path.exists(_lib):
        ctypes.CDLL(_lib, mode=ctypes.RTLD_GLOBAL)

try:
    from mpi4py import MPI  # noqa: F401
except ImportError:
    MPI = None
