"""Where the residual layers run: ``device="cpu"`` (the default) or ``"cuda"``.

``"cuda"`` keeps weights, states and adjoints of a whole forward/adjoint/
gradient evaluation on a CUDA device (numpy arrays go in and come out once per
call). It needs the CUDA build of the package
(``pip install . -Ccmake.define.LP_CUDA=ON``) and a visible device; ``"cuda"``
picks device ``local_rank % count`` (one GPU per rank on a node), ``"cuda:k"``
device k.
"""

import os
import re

from . import _core


def cuda_available():
    """Whether this build has the CUDA backend and a CUDA device is visible."""
    return bool(_core.cuda_built) and _core.cuda_device_count() > 0


def _local_rank(comm):
    if comm is None or comm.Get_size() == 1:
        return 0
    from mpi4py import MPI

    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return node.Get_rank()
    finally:
        node.Free()


def resolve(device, comm=None):
    """The core's device index for ``device`` (-1: the host); ValueError when
    the device cannot be used. Under MPI every rank agrees: if any rank cannot
    use its device, all raise."""
    if not isinstance(device, str):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:K', got {device!r}")
    m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", device.strip().lower())
    if m is None or (m.group(1) == "cpu" and m.group(2) is not None):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:K', got {device!r}")
    if m.group(1) == "cpu":
        return -1
    error = None
    index = -1
    if not _core.cuda_built:
        error = ("device='cuda': this build of layerparallel has no CUDA backend; reinstall "
                 "with pip install . -Ccmake.define.LP_CUDA=ON")
    else:
        count = _core.cuda_device_count()
        if count == 0:
            error = "device='cuda': no CUDA device is visible to this process"
        elif m.group(2) is not None:
            index = int(m.group(2))
            if index >= count:
                error = f"device={device!r}: only {count} CUDA device(s) visible"
        else:
            index = _local_rank(comm) % count
    if comm is not None and comm.Get_size() > 1:
        errors = comm.allgather(error)
        bad = [(r, e) for r, e in enumerate(errors) if e is not None]
        if bad:
            r, e = bad[0]
            raise ValueError(e if r == comm.Get_rank() or error is not None else f"rank {r}: {e}")
    elif error is not None:
        raise ValueError(error)
    return index


def name(index):
    """A readable name of the core's device ``index`` (-1: the host)."""
    return _core.device_name(index)


MESSAGES = ("auto", "staged", "direct")
MESSAGES_ENV = "LP_CUDA_AWARE_MPI"


def cuda_aware_mpi():
    """The MPI library's own answer to "do you take CUDA device pointers?":
    True, False, or None when it cannot say (no query in this MPI, MPI not
    initialized, or a build without MPI)."""
    answer = _core.mpi_cuda_support() if _core.mpi_available else -1
    return None if answer < 0 else bool(answer)


def message_path(option="auto", environ=None, query=cuda_aware_mpi):
    """How a device solve's boundary states travel between ranks: "direct"
    (device pointers handed to MPI) or "staged" (through page-locked host
    buffers, which any MPI accepts).

    ``option`` "staged" or "direct" decides. "auto" asks the environment
    variable LP_CUDA_AWARE_MPI first ("1": direct, "0": staged), then the MPI
    library (``cuda_aware_mpi()``); when neither says yes, staged.
    """
    if option not in MESSAGES:
        raise ValueError(f"device_messages must be one of {MESSAGES}, got {option!r}")
    if option != "auto":
        return option
    env = (os.environ if environ is None else environ).get(MESSAGES_ENV, "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return "direct"
    if env in ("0", "false", "no", "off"):
        return "staged"
    if env not in ("", "auto"):
        raise ValueError(f"{MESSAGES_ENV} must be 1, 0 or auto, got {env!r}")
    return "direct" if query() else "staged"
