"""lp.MGRIT: the options of a multigrid-reduction-in-time solve (SPEC section 2).

An MGRIT object is passed as ``solver=`` to ``ODEResNet.loss_and_grad`` and
``forward`` (and to training); the compiled engine does the work. The same
engine solves any user propagator through :func:`solve`.
"""

import re

import numpy as np

from . import _core
from . import _validation as check
from ._core import MGRITDiverged

CYCLES = ("V", "F")
STORAGE = ("all", "C")


def comm_handle(comm):
    """(Fortran handle, rank, size) of an mpi4py communicator, or (None, 0, 1)."""
    if comm is None:
        return None, 0, 1
    if not hasattr(comm, "py2f") or not hasattr(comm, "Get_size"):
        raise ValueError(f"comm must be an mpi4py communicator, got {comm!r}")
    size = comm.Get_size()
    if size > 1 and not _core.mpi_available:
        raise ValueError("comm has several ranks but layerparallel was built without MPI")
    if not _core.mpi_available:
        return None, 0, 1
    return comm.py2f(), comm.Get_rank(), size


class MGRIT:
    """Options of an MGRIT solve.

    Parameters
    ----------
    cfactor : int >= 2 or list of ints
        Coarsening factor c (a list gives one per level, the last repeating).
    max_levels : int >= 1
        Levels at most; 1 is serial propagation.
    min_coarse : int >= 1
        Stop coarsening at a level with at most this many intervals.
    relax : "F" | "FCF" | "FCFCF" ...
        Relaxation: F-relaxation, followed by C-then-F sweeps.
    cycle : "V" | "F"
    tol : float > 0 or None
        Stop when the residual (2-norm over level-0 C-points) is <= tol.
    rtol : float in (0, 1) or None
        ... or <= rtol times the first residual. With neither, exactly
        ``max_iter`` cycles run (one-shot training).
    max_iter : int >= 0
    comm : mpi4py communicator or None
        Ranks to distribute the layers over (any sub-communicator).
    storage : "all" | "C"
        Keep every level-0 state (fastest) or only C-point states, recomputing
        F-states when needed (about c times less state memory on level 0).
    warm_start : bool
        Start each solve from the previous solution (same network and batch).
    divergence : float > 1
        A residual this many times the first one raises lp.MGRITDiverged.
    """

    def __init__(self, cfactor=4, max_levels=10, min_coarse=2, relax="FCF", cycle="V",
                 tol=1e-9, rtol=None, max_iter=50, comm=None, storage="all",
                 warm_start=True, divergence=1e8):
        if isinstance(cfactor, (list, tuple)):
            if not cfactor:
                raise ValueError("cfactor must not be empty")
            cf = [check.positive_int(c, "cfactor") for c in cfactor]
        else:
            cf = [check.positive_int(cfactor, "cfactor")]
        if min(cf) < 2:
            raise ValueError(f"cfactor must be >= 2, got {cfactor!r}")
        self.cfactor = cf if len(cf) > 1 else cf[0]
        self._cf = cf
        self.max_levels = check.positive_int(max_levels, "max_levels", 64)
        self.min_coarse = check.positive_int(min_coarse, "min_coarse")
        if not isinstance(relax, str) or not re.fullmatch(r"F(CF)*", relax):
            raise ValueError(f"relax must be 'F', 'FCF', 'FCFCF', ...; got {relax!r}")
        self.relax = relax
        self.cycle = check.choice(cycle, "cycle", CYCLES)
        self.tol = None if tol is None else check.finite_float(tol, "tol", strictly_positive=True)
        if rtol is not None:
            rtol = check.finite_float(rtol, "rtol", strictly_positive=True)
            if rtol >= 1.0:
                raise ValueError(f"rtol must be < 1, got {rtol!r}")
        self.rtol = rtol
        if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) \
                or max_iter < 0:
            raise ValueError(f"max_iter must be a nonnegative integer, got {max_iter!r}")
        self.max_iter = int(max_iter)
        self.storage = check.choice(storage, "storage", STORAGE)
        self.warm_start = bool(warm_start)
        self.divergence = check.finite_float(divergence, "divergence")
        if self.divergence <= 1.0:
            raise ValueError(f"divergence must be > 1, got {divergence!r}")
        self.comm = comm
        self._handle, self.rank, self.size = comm_handle(comm)

    def options(self, max_levels=None):
        """The options as the compiled engine takes them."""
        return {
            "cfactor": self._cf,
            "max_levels": self.max_levels if max_levels is None else max_levels,
            "min_coarse": self.min_coarse,
            "relax_cf": (len(self.relax) - 1) // 2,
            "fcycle": self.cycle == "F",
            "tol": self.tol or 0.0,
            "rtol": self.rtol or 0.0,
            "max_iter": self.max_iter,
            "store_fine_f": self.storage == "all",
            "divergence": self.divergence,
        }

    def _key(self):
        return (tuple(self._cf), self.max_levels, self.min_coarse, self.relax, self.cycle,
                self.tol, self.rtol, self.max_iter, self.storage, self.divergence,
                self._handle)

    def __repr__(self):
        return (f"MGRIT(cfactor={self.cfactor}, max_levels={self.max_levels}, "
                f"min_coarse={self.min_coarse}, relax={self.relax!r}, cycle={self.cycle!r}, "
                f"tol={self.tol}, rtol={self.rtol}, max_iter={self.max_iter}, "
                f"storage={self.storage!r}, ranks={self.size})")


def serial_options():
    """Engine options for serial propagation across ranks (one level)."""
    return MGRIT(max_levels=1, tol=None, max_iter=1).options()


__all__ = ["MGRIT", "MGRITDiverged"]
