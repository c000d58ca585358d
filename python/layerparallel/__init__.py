"""layerparallel: layer-parallel training of deep ODE-ResNets with MGRIT.

    import layerparallel as lp
    X, Y = lp.datasets.peaks(n=5000, seed=0)
    net = lp.ODEResNet(n_in=2, width=8, n_layers=64, n_out=5, T=5.0)
    theta = net.init("box", seed=0)
    loss, grad = net.loss_and_grad(theta, X, Y)
"""

import os as _os

from . import _preload  # noqa: F401  (BLAS and MPI libraries before the compiled core)
from . import _core, datasets, optim, steps
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

# Under mpiexec with several ranks, one core thread per rank unless the user
# says otherwise (OMP_NUM_THREADS or set_num_threads): ranks are usually placed
# one per core, and spinning thread teams of oversubscribed ranks starve each
# other.
if _preload.MPI is not None and "OMP_NUM_THREADS" not in _os.environ:
    if _preload.MPI.COMM_WORLD.Get_size() > 1:
        _core.set_num_threads(1)

__all__ = ["ODEResNet", "ConvODEResNet", "Params", "MGRIT", "MGRITDiverged", "solve", "check_propagator",
           "train", "nested_train", "refine", "ProcessGrid", "dd", "save", "load", "History", "CheckpointError",
           "RankMismatch", "optim", "datasets", "steps", "set_num_threads", "get_num_threads",
           "cuda_available", "__version__"]


def __getattr__(name):
    # lp.torch imports PyTorch, an optional extra: only when first used.
    if name == "torch":
        import importlib

        return importlib.import_module(".torch", __name__)
    raise AttributeError(f"module 'layerparallel' has no attribute {name!r}")


def set_num_threads(n):
    """Threads the compiled core may use (process-wide; default: OMP_NUM_THREADS or all cores).

    Under MPI with one rank per core, 1 is right.
    """
    from ._validation import positive_int

    _core.set_num_threads(positive_int(n, "n"))


def get_num_threads():
    """Threads the compiled core uses."""
    return _core.get_num_threads()
