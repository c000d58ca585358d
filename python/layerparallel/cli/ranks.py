"""The command line under mpiexec: which rank this is, the world communicator,
and agreeing on an error that only some ranks found."""

import os
import sys

from .errors import UsageError


def env_rank():
    """This process's rank before MPI is initialized (launcher variables), else 0."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None:
        try:
            return mpi.COMM_WORLD.Get_rank()
        except Exception:  # MPI finalized or not usable
            pass
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def world():
    """COMM_WORLD if it has several ranks (else None), this rank, the size."""
    from .. import _preload

    MPI = _preload.MPI
    if MPI is None:
        return None, 0, 1
    comm = MPI.COMM_WORLD
    if comm.Get_size() > 1:
        return comm, comm.Get_rank(), comm.Get_size()
    return None, 0, 1


def agree(comm, error):
    """Raise UsageError on every rank if any rank has an error message (rank
    0's, else the first); for checks that only some ranks make."""
    if comm is not None:
        errors = comm.allgather(error)
        error = next((e for e in errors if e is not None), None)
    if error is not None:
        raise UsageError(error)


def printer(rank):
    """print on rank 0, nothing elsewhere."""
    return print if rank == 0 else (lambda *a, **k: None)
