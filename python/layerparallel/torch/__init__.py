"""lp.torch: the ODE-ResNet and its compiled core inside PyTorch (the `torch` extra).

    to_module(net, theta)       a torch.nn.Module computing exactly this network
    from_module(module)         (net, theta) back from such a module
    ODEResNetBlock(net, ...)    the C++ core (serial or MGRIT, any ranks) as an
                                autograd-aware nn.Module for larger torch models
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # the extra is optional: say how to get it
    raise ImportError(
        "layerparallel.torch needs PyTorch: pip install 'layerparallel[torch]' (or torch)"
    ) from exc

from ._block import ODEResNetBlock
from ._modules import (ConvODEResNetModule, ConvResidualLayers, ODEResNetModule, ResidualLayers,
                       SmoothReLU, from_module, to_module)

__all__ = ["to_module", "from_module", "ODEResNetModule", "ResidualLayers", "SmoothReLU",
           "ConvODEResNetModule", "ConvResidualLayers", "ODEResNetBlock"]
