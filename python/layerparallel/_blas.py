"""Load the OpenBLAS of the scipy-openblas32 wheel before the compiled core.

_core links libscipy_openblas.so with an rpath into the installed wheel; a
preload by path also covers layouts where that rpath does not hold (editable
installs, relocated environments). A build against a system BLAS has no need
of it, so a missing wheel is not an error here.
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
