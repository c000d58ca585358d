"""layerparallel: layer-parallel training of deep ODE-ResNets with MGRIT.

    import layerparallel as lp
    X, Y = lp.datasets.peaks(n=5000, seed=0)
    net = lp.ODEResNet(n_in=2, width=8, n_layers=64, n_out=5, T=5.0)
    theta = net.init("box", seed=0)
    loss, grad = net.loss_and_grad(theta, X, Y)
"""

import os as _os

from . import _preload  # noqa: F401  (BLAS and MPI libraries before the compiled core)
from . import _threads

with _threads.passive_waits():  # the OpenMP runtime reads its settings when it loads
    from . import _core
from . import datasets, optim, steps
from .mgrit import MGRIT, MGRITDiverged, check_propagator, solve
from .network import ODEResNet
from .conv_network import ConvODEResNet
from .devices import cuda_available
from .params import Params
from .checkpoint import CheckpointError
from ._collective import RankMismatch
from .train import History, train
from .nested import nested_train, refine
from .grid import ProcessGrid
from . import dd
from .modelfile import load, save

__version__ = "0.1.0"

# Default threads: this process's CPUs (affinity, cgroup quota) shared among
# the MPI ranks on its node, unless the user says otherwise (OMP_NUM_THREADS or
# set_num_threads). Not collective: the ranks per node come from the launcher.
if "OMP_NUM_THREADS" not in _os.environ:
    _world = _preload.MPI.COMM_WORLD.Get_size() if _preload.MPI is not None else 1
    _core.set_num_threads(_threads.default_threads(
        _threads.launcher_node_ranks(_world) if _world > 1 else 1))

__all__ = ["ODEResNet", "ConvODEResNet", "Params", "MGRIT", "MGRITDiverged", "solve", "check_propagator",
           "train", "nested_train", "refine", "ProcessGrid", "dd", "save", "load", "History", "CheckpointError",
           "RankMismatch", "optim", "datasets", "steps", "set_num_threads", "get_num_threads",
           "cuda_available", "default_num_threads", "set_narrow_kernels", "narrow_kernels",
           "__version__"]


def __getattr__(name):
    # lp.torch imports PyTorch, an optional extra: only when first used.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'layerparallel' has no attribute {name!r}")


def set_num_threads(n):
    """Threads the compiled core may use (process-wide). Default: OMP_NUM_THREADS,
    else ``default_num_threads()`` (this process's CPUs shared among the ranks on
    its node). Parallel regions open only where their work pays for them.
    """
    from ._validation import positive_int

    _core.set_num_threads(positive_int(n, "n"))


_NARROW_MODES = ("auto", "on", "off")


def set_narrow_kernels(mode):
    """Which product path residual layers of width 2, 4, 8, 16 (the narrow
    kernels), 32 or 64 (the register-blocked kernels) take: "auto"
    (default: a short timing of the narrow kernels against the BLAS at first
    use, per width, cached for the process), "on" (always the narrow kernels)
    or "off" (always the BLAS). The same mode selects between the direct
    kernels and im2col + BLAS for 3x3 residual conv layers at 4, 8 or 16
    channels. The environment variable LP_NARROW_KERNEL sets
    the initial mode. Both paths give the same results up to rounding."""
    if mode not in _NARROW_MODES:
        raise ValueError(f"narrow kernel mode must be one of {_NARROW_MODES}, got {mode!r}")
    _core.set_narrow_mode(_NARROW_MODES.index(mode))


def narrow_kernels(width=None, dtype="float64"):
    """The narrow-kernel mode ("auto", "on", "off"); with ``width``, whether
    layers of that width and ``dtype`` take the narrow kernels now (under
    "auto" this runs the width's timing if it has not run yet)."""
    if width is None:
        return _NARROW_MODES[_core.narrow_mode()]
    from ._validation import positive_int

    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    uses = _core.uses_narrow if dtype == "float64" else _core.uses_narrow32
    return bool(uses(positive_int(width, "width")))


if _os.environ.get("LP_NARROW_KERNEL", "auto") not in _NARROW_MODES + ("", "1", "0"):
    raise ValueError("LP_NARROW_KERNEL must be auto, on or off, got "
                     f"{_os.environ['LP_NARROW_KERNEL']!r}")


def get_num_threads():
    """Threads the compiled core uses."""
    return _core.get_num_threads()


def default_num_threads(comm=None):
    """The thread count the core would pick: the CPUs this process may use
    (affinity mask, cgroup quota) divided among the ranks on this node. With an
    mpi4py ``comm`` the ranks per node are counted with MPI_COMM_TYPE_SHARED
    (collective: call it on every rank of ``comm``); without, the launcher's
    announcement (MPI_LOCALNRANKS, OMPI_COMM_WORLD_LOCAL_SIZE) or all ranks."""
    if comm is None:
        world = _preload.MPI.COMM_WORLD.Get_size() if _preload.MPI is not None else 1
        ranks = _threads.launcher_node_ranks(world) if world > 1 else 1
    else:
        ranks = _threads.node_ranks(comm)
    return _threads.default_threads(ranks)
