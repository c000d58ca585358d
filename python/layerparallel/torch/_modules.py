"""The ODE-ResNet as plain torch modules, and the conversions to and from lp.

    u_0 = opening(y)                                  (sigma(W_in y + b_in), linear, padding)
    u_{n+1} = u_n + h sigma(W_n u_n + b_n)             n = 0 .. N-1, h = T/N
    output = W_out u_N + b_out

Converters are looked up by the lp network's class, so another network family
(convolutional layers, say) adds its module and one entry to each table.
"""

import numpy as np
import torch
from torch import nn

from ..conv_network import ConvODEResNet
from ..network import ODEResNet
from ..params import Params


class SmoothReLU(nn.Module):
    """relu with the kink replaced by (x + eta)^2 / (4 eta) on |x| < eta (C^1)."""

    def __init__(self, eta=0.1):
        super().__init__()
        self.eta = float(eta)

    def forward(self, x):
        c = torch.clamp(x, -self.eta, self.eta) + self.eta
        return c * c * (0.25 / self.eta) + torch.relu(x - self.eta)

    def extra_repr(self):
        return f"eta={self.eta}"


def activation_module(name, eta):
    return {"relu": nn.ReLU, "tanh": nn.Tanh}.get(name, lambda: SmoothReLU(eta))()


class ZeroPadding(nn.Module):
    """y padded with zero columns to the network width (the parameter-free opening)."""

    def __init__(self, width):
        super().__init__()
        self.width = int(width)

    def forward(self, y):
        return nn.functional.pad(y, (0, self.width - y.shape[-1]))


class ResidualLayers(nn.Module):
    """u_{n+1} = u_n + h sigma(W_n u_n + b_n) for n = 0 .. N-1.

    ``W`` (N, width, width) and ``b`` (N, width) are the parameters, in the
    order and shapes of lp.Params.
    """

    def __init__(self, width, n_layers, h, activation, dtype=torch.float64):
        super().__init__()
        self.h = float(h)
        self.sigma = activation
        self.W = nn.Parameter(torch.zeros(n_layers, width, width, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(n_layers, width, dtype=dtype))

    def forward(self, u):
        for W, b in zip(self.W, self.b):
            u = u + self.h * self.sigma(u @ W.T + b)
        return u


class ODEResNetModule(nn.Module):
    """lp.ODEResNet's network as a torch module: ``opening``, ``layers``, ``head``.

    Takes lp.ODEResNet's arguments (without ``comm``). ``forward(y)`` is the
    head output (logits or regression values), ``states(y)`` the final states
    u_N, ``loss(y, c)`` the objective J including regularization, equal to
    lp.ODEResNet.loss. Parameters start at zero; to_module fills them.
    """

    def __init__(self, n_in, width, n_layers, n_out, T=5.0, activation="smoothrelu",
                 opening="activation", head="classification", gamma_tik=0.0, gamma_ddt=0.0,
                 gamma_out=0.0, eta=0.1, dtype=torch.float64):
        super().__init__()
        net = ODEResNet(n_in, width, n_layers, n_out, T=T, activation=activation,
                        opening=opening, head=head, gamma_tik=gamma_tik, gamma_ddt=gamma_ddt,
                        gamma_out=gamma_out, eta=eta)  # validates the configuration
        self.config = net_config(net)
        if opening == "padding":
            self.opening = ZeroPadding(width)
        else:
            linear = nn.Linear(n_in, width, dtype=dtype)
            self.opening = linear if opening == "linear" else nn.Sequential(
                linear, activation_module(activation, eta))
        self.layers = ResidualLayers(width, n_layers, net.h, activation_module(activation, eta),
                                     dtype)
        self.pool = nn.Identity()
        self.head = nn.Linear(width, n_out, dtype=dtype)

    def _opening_linear(self):
        """The opening's affine map (nn.Linear or nn.Conv2d), or None for padding."""
        if isinstance(self.opening, (nn.Linear, nn.Conv2d)):
            return self.opening
        if isinstance(self.opening, nn.Sequential):
            return self.opening[0]
        return None

    def states(self, y):
        """u_N for the rows of y."""
        return self.layers(self.opening(y))

    def forward(self, y):
        return self.head(self.pool(self.states(y)))

    def regularization(self):
        """gamma_tik/2 h sum ||theta_n||^2 + gamma_ddt/2 h sum ||(theta_{n+1} - theta_n)/h||^2
        + gamma_out/2 (||W_in||^2 + ||b_in||^2 + ||W_out||^2 + ||b_out||^2)."""
        c, h = self.config, self.layers.h
        W, b = self.layers.W, self.layers.b
        reg = 0.5 * c["gamma_tik"] * h * (W.square().sum() + b.square().sum())
        reg = reg + 0.5 * c["gamma_ddt"] / h * ((W[1:] - W[:-1]).square().sum()
                                                + (b[1:] - b[:-1]).square().sum())
        outer = [self.head.weight, self.head.bias]
        lin = self._opening_linear()
        if lin is not None:
            outer += [lin.weight, lin.bias]
        return reg + 0.5 * c["gamma_out"] * sum(p.square().sum() for p in outer)

    def loss(self, y, c):
        """J: softmax cross-entropy (classification; c one-hot or any nonnegative
        rows) or half the mean squared error (regression), plus regularization."""
        out = self(y)
        if self.config.get("head", "classification") == "classification":
            data = -(c * torch.log_softmax(out, dim=1)).sum() / out.shape[0]
        else:
            data = 0.5 * (out - c).square().sum() / out.shape[0]
        return data + self.regularization()


class ChannelPadding(nn.Module):
    """y (n, C_in, H, W) with zero channels appended up to C (the parameter-free opening)."""

    def __init__(self, channels):
        super().__init__()
        self.channels = int(channels)

    def forward(self, y):
        return nn.functional.pad(y, (0, 0, 0, 0, 0, self.channels - y.shape[1]))


class ConvResidualLayers(ResidualLayers):
    """u_{n+1} = u_n + h sigma(K_n * u_n + b_n): k x k kernels, "same" zero padding.

    ``W`` (N, C, C, k, k) and ``b`` (N, C), as in lp.Params (torch's conv2d layout).
    """

    def __init__(self, channels, n_layers, kernel_size, h, activation, dtype=torch.float64):
        nn.Module.__init__(self)
        self.h = float(h)
        self.sigma = activation
        self.padding = kernel_size // 2
        k = kernel_size
        self.W = nn.Parameter(torch.zeros(n_layers, channels, channels, k, k, dtype=dtype))
        self.b = nn.Parameter(torch.zeros(n_layers, channels, dtype=dtype))

    def forward(self, u):
        for W, b in zip(self.W, self.b):
            u = u + self.h * self.sigma(nn.functional.conv2d(u, W, b, padding=self.padding))
        return u


class ConvODEResNetModule(ODEResNetModule):
    """lp.ConvODEResNet's network as a torch module (inputs (n, C_in, H, W)):
    ``opening`` (conv, conv + sigma, or channel padding), ``layers``, ``pool``
    (channel means or flatten in (C, H, W) order) and ``head``. Takes
    lp.ConvODEResNet's arguments (without ``comm``)."""

    def __init__(self, in_shape, channels, n_layers, n_out, T=5.0, kernel_size=3,
                 activation="smoothrelu", opening="activation", pooling="average",
                 gamma_tik=0.0, gamma_ddt=0.0, gamma_out=0.0, eta=0.1, dtype=torch.float64):
        nn.Module.__init__(self)
        net = ConvODEResNet(in_shape, channels, n_layers, n_out, T=T, kernel_size=kernel_size,
                            activation=activation, opening=opening, pooling=pooling,
                            gamma_tik=gamma_tik, gamma_ddt=gamma_ddt, gamma_out=gamma_out,
                            eta=eta)  # validates the configuration
        self.config = net_config(net)
        c_in, k = net.in_shape[0], net.kernel_size
        if opening == "padding":
            self.opening = ChannelPadding(channels)
        else:
            conv = nn.Conv2d(c_in, channels, k, padding=k // 2, dtype=dtype)
            self.opening = conv if opening == "linear" else nn.Sequential(
                conv, activation_module(activation, eta))
        self.layers = ConvResidualLayers(channels, n_layers, k, net.h,
                                         activation_module(activation, eta), dtype)
        if pooling == "average":
            self.pool, features = _ChannelMean(), channels
        else:
            self.pool, features = nn.Flatten(), channels * net.in_shape[1] * net.in_shape[2]
        self.head = nn.Linear(features, n_out, dtype=dtype)


class _ChannelMean(nn.Module):
    def forward(self, u):
        return u.mean(dim=(2, 3))


def net_config(net):
    """An lp.ODEResNet's (or lp.ConvODEResNet's) constructor arguments (without comm)."""
    if isinstance(net, ConvODEResNet):
        keys = ("in_shape", "channels", "n_layers", "n_out", "T", "kernel_size", "activation",
                "opening", "pooling", "gamma_tik", "gamma_ddt", "gamma_out", "eta")
    else:
        keys = ("n_in", "width", "n_layers", "n_out", "T", "activation", "opening", "head",
                "gamma_tik", "gamma_ddt", "gamma_out", "eta")
    return {k: getattr(net, k) for k in keys}


def _whole_vector(net, theta):
    if isinstance(theta, Params):
        net._theta(theta)  # layout and finiteness
        return theta.gather()
    if net.distributed:
        raise ValueError("theta of a distributed net must be its lp.Params (this rank's part)")
    return net._theta(theta).copy()


def _dense_to_module(net, theta, dtype):
    cls = ConvODEResNetModule if isinstance(net, ConvODEResNet) else ODEResNetModule
    module = cls(**net_config(net), dtype=dtype)
    full = Params(net._global_layout, _whole_vector(net, theta))
    lin = module._opening_linear()
    with torch.no_grad():
        if lin is not None:
            lin.weight.copy_(torch.from_numpy(full.W_in))
            lin.bias.copy_(torch.from_numpy(full.b_in))
        module.layers.W.copy_(torch.from_numpy(full.W))
        module.layers.b.copy_(torch.from_numpy(full.b))
        module.head.weight.copy_(torch.from_numpy(full.W_out))
        module.head.bias.copy_(torch.from_numpy(full.b_out))
    return module


def _dense_from_module(module, comm):
    cls = ConvODEResNet if isinstance(module, ConvODEResNetModule) else ODEResNet
    net = cls(**module.config, comm=comm)
    full = Params(net._global_layout)
    lin = module._opening_linear()
    blocks = [("W", module.layers.W), ("b", module.layers.b),
              ("W_out", module.head.weight), ("b_out", module.head.bias)]
    if lin is not None:
        blocks += [("W_in", lin.weight), ("b_in", lin.bias)]
    for name, p in blocks:
        view = getattr(full, name)
        if tuple(p.shape) != view.shape:
            raise ValueError(f"module parameter for {name} has shape {tuple(p.shape)}, "
                             f"expected {view.shape}")
        view[...] = p.detach().cpu().to(torch.float64).numpy()
    if not np.isfinite(full.data).all():
        raise ValueError("module parameters contain NaN or Inf")
    return net, net.new_params().scatter(full.data)


# lp network class -> converter; module class -> converter back.
_TO_MODULE = {ODEResNet: _dense_to_module, ConvODEResNet: _dense_to_module}
_FROM_MODULE = {ODEResNetModule: _dense_from_module, ConvODEResNetModule: _dense_from_module}


def to_module(net, theta, dtype=torch.float64):
    """A torch.nn.Module computing exactly ``net`` with parameters ``theta``.

    float64 by default (the core's precision); ``dtype=torch.float32`` for a
    lighter copy. ``theta`` is an lp.Params (on several ranks: this rank's
    part; the whole vector is gathered, so every rank must call) or, on one
    rank, the flat vector. The module holds a copy of the parameters.
    """
    net = getattr(net, "inner", net)  # a data-parallel net: each group holds the whole net
    convert = _TO_MODULE.get(type(net))
    if convert is None:
        raise ValueError(f"to_module supports {', '.join(c.__name__ for c in _TO_MODULE)}; "
                         f"got {type(net).__name__}")
    if dtype not in (torch.float64, torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be a torch floating dtype, got {dtype!r}")
    return convert(net, theta, dtype)


def from_module(module, comm=None):
    """(net, theta) from a module of to_module's form (an lp.torch.ODEResNetModule).

    The parameters are copied as float64; with ``comm`` the net is distributed
    over its ranks and theta is this rank's part (every rank passes the same
    module).
    """
    convert = _FROM_MODULE.get(type(module))
    if convert is None:
        raise ValueError(f"from_module supports {', '.join(c.__name__ for c in _FROM_MODULE)}; "
                         f"got {type(module).__name__}")
    return convert(module, comm)
