"""lp.ConvODEResNet: an ODE-ResNet of convolutional residual layers on images.

    u_0     = sigma(K_in * y + b_in)                 opening (or linear, or channel padding)
    u_{n+1} = u_n + h sigma(K_n * u_n + b_n)          n = 0 .. N-1, h = T/N
    J       = 1/|S| sum_k softmax-CE(W_out f(u_N) + b_out, c_k) + regularization

``*`` is a stride-1 cross-correlation with a k x k kernel (k odd) and zero
"same" padding, K_n of shape (C, C, k, k) and one bias per channel; f is global
average pooling over the pixels (C features) or the flattened state (C H W
features). Images are (n, C_in, H, W) arrays. Everything else -- solvers, MPI
layout, Params, training, nested iteration, checkpoints -- is the dense
network's.
"""

import numbers

import numpy as np

from . import _collective as collective
from . import _core
from . import _validation as check
from .init import METHODS, _fill_dense, box_layers
from .mgrit import comm_handle, serial_options
from .network import ACTIVATIONS, MAX_LAYERS, MAX_WIDTH, OPENINGS, ODEResNet, parse_dtype
from .params import Params

POOLINGS = ("average", "flatten")
MAX_PIXELS = 1 << 24


def image_shape(value, name="in_shape"):
    """(C_in, H, W) as three positive ints, else ValueError."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
        raise ValueError(f"{name} must be (channels, height, width), got {value!r}")
    c, h, w = (check.positive_int(v, name, MAX_WIDTH) for v in value)
    if h * w > MAX_PIXELS:
        raise ValueError(f"{name}: {h} x {w} pixels is too many")
    return (c, h, w)


def odd_kernel(value, name="kernel_size"):
    """An odd positive int (same padding needs a center pixel), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive odd integer, got {value!r}")
    if value % 2 == 0:
        raise ValueError(f"{name} must be odd (same padding needs a center pixel), got {value}")
    return int(value)


class ConvODEResNet(ODEResNet):
    """A convolutional ODE-ResNet of ``n_layers`` conv residual layers with
    ``channels`` channels on images of shape ``in_shape`` = (C_in, H, W).

    Parameters
    ----------
    in_shape : (C_in, H, W)
    channels : int
        Channels C of every state.
    n_layers, n_out, T, activation, eta, gamma_tik, gamma_ddt, gamma_out, comm
        As for :class:`ODEResNet` (the head is softmax cross-entropy).
    kernel_size : odd int
        k of the k x k kernels (opening and residual layers); "same" zero padding.
    opening : "activation" | "linear" | "padding"
        u_0 = sigma(K_in * y + b_in), K_in * y + b_in, or y with zero channels
        appended up to C (needs C_in <= C; no opening parameters).
    pooling : "average" | "flatten"
        Head features: each channel's mean over the pixels (C), or the whole
        state flattened in (C, H, W) order.
    dtype : "float64" | "float32"
        The scalar of parameters, states and gradients, as for
        :class:`ODEResNet` (images and targets of another dtype are converted
        once per call; losses are summed in float64).

    Parameters are an lp.Params with ``W_in`` (C, C_in, k, k), ``b_in`` (C),
    ``W`` (layers, C, C, k, k), ``b`` (layers, C), ``W_out`` (n_out, features),
    ``b_out`` (n_out). ``forward`` returns u_N as (n, C, H, W).
    """

    def __init__(self, in_shape, channels, n_layers, n_out, T=5.0, kernel_size=3,
                 activation="smoothrelu", opening="activation", pooling="average",
                 gamma_tik=0.0, gamma_ddt=0.0, gamma_out=0.0, eta=0.1, comm=None,
                 dtype="float64"):
        self.comm = comm
        self._handle, self.rank, self.size = comm_handle(comm)
        # Every rank must build the same network: checks and configuration agreed.
        with collective.checks(self._agreeing(), "creating the ConvODEResNet") as agreed:
            self._configure_conv(in_shape, channels, n_layers, n_out, T, kernel_size,
                                 activation, opening, pooling, gamma_tik, gamma_ddt, gamma_out,
                                 eta)
            self.dtype = parse_dtype(dtype)
            agreed.fingerprint = {"network": self._config(), "dtype": self.dtype.name,
                                  "ranks": self.size}
        self._model = self._core_class("ConvSerialModel")(self._config())
        self._global_layout = self._model.layout()
        firsts = list(_core.first_layers(self.n_layers, self.size)) + [self.n_layers]
        self.first_layer = firsts[self.rank]
        self.n_local_layers = firsts[self.rank + 1] - firsts[self.rank]
        self._layout = self.block_layout(self.first_layer, self.n_local_layers)
        self._solvers = {}

    def _configure_conv(self, in_shape, channels, n_layers, n_out, T, kernel_size, activation,
                        opening, pooling, gamma_tik, gamma_ddt, gamma_out, eta):
        self.in_shape = image_shape(in_shape)
        self.channels = check.positive_int(channels, "channels", MAX_WIDTH)
        self.n_layers = check.positive_int(n_layers, "n_layers", MAX_LAYERS)
        self.n_out = check.positive_int(n_out, "n_out", MAX_WIDTH)
        self.T = check.finite_float(T, "T", strictly_positive=True)
        self.kernel_size = odd_kernel(kernel_size)
        self.activation = check.choice(activation, "activation", ACTIVATIONS)
        self.opening = check.choice(opening, "opening", OPENINGS)
        self.pooling = check.choice(pooling, "pooling", POOLINGS)
        self.head = "classification"
        self.gamma_tik = check.finite_float(gamma_tik, "gamma_tik", minimum=0.0)
        self.gamma_ddt = check.finite_float(gamma_ddt, "gamma_ddt", minimum=0.0)
        self.gamma_out = check.finite_float(gamma_out, "gamma_out", minimum=0.0)
        self.eta = check.finite_float(eta, "eta", strictly_positive=True)
        if not self.h >= 1e-150:
            raise ValueError(f"T is too small for {self.n_layers} layers: h = {self.h!r}")
        c_in, height, width = self.in_shape
        if self.opening == "padding" and c_in > self.channels:
            raise ValueError(f"opening='padding' needs in_shape's channels ({c_in}) <= "
                             f"channels ({self.channels})")
        self.n_in = c_in * height * width  # values per image
        if self.size > self.n_layers:
            raise ValueError(f"comm has {self.size} ranks but the net only {self.n_layers} "
                             "layers: every rank needs at least one layer")

    def block_layout(self, first_layer, n_layers):
        """{block: (offset, shape)} of a parameter vector holding residual layers
        [first_layer, first_layer + n_layers) (with the opening and the head)."""
        return _core.conv_layout(self._config(), first_layer, n_layers)

    def _config(self):
        c_in, height, width = self.in_shape
        return {"in_channels": c_in, "height": height, "width": width,
                "channels": self.channels, "n_layers": self.n_layers, "n_out": self.n_out,
                "kernel_size": self.kernel_size, "T": self.T, "activation": self.activation,
                "eta": self.eta, "opening": self.opening, "pooling": self.pooling,
                "gamma_tik": self.gamma_tik, "gamma_ddt": self.gamma_ddt,
                "gamma_out": self.gamma_out}

    @property
    def features(self):
        """Inputs of the dense head: C (average pooling) or C H W (flatten)."""
        _, height, width = self.in_shape
        return self.channels * (1 if self.pooling == "average" else height * width)

    @property
    def state_size(self):
        """Values of one sample's state: C H W."""
        return self.channels * self.in_shape[1] * self.in_shape[2]

    def with_layers(self, n_layers):
        """The same network with ``n_layers`` residual layers (same T, comm, ...)."""
        return ConvODEResNet(self.in_shape, self.channels, n_layers, self.n_out, T=self.T,
                             kernel_size=self.kernel_size, activation=self.activation,
                             opening=self.opening, pooling=self.pooling,
                             gamma_tik=self.gamma_tik, gamma_ddt=self.gamma_ddt,
                             gamma_out=self.gamma_out, eta=self.eta, comm=self.comm,
                             dtype=self.dtype)

    def _parallel_model(self, solver):
        if solver is None:
            key, opts = "serial", serial_options()
        else:
            self._check_solver(solver)
            key, opts = solver._key(), solver.options()
        model = self._solvers.get(key)
        if model is None:
            model = self._core_class("ConvLayerParallelModel")(self._config(), opts,
                                                               self._handle)
            self._solvers[key] = model
        return model

    # ---- parameters -----------------------------------------------------
    def init(self, method="box", seed=0, magnitude=1.0, outer=None):
        """New lp.Params initialized by ``method`` (as :meth:`ODEResNet.init`).

        A kernel's fan-in is k k C_in (k k C for the residual layers), its
        fan-out k k C_out; "box" treats each output channel's kernel as one
        row acting on a k k C patch in [0, magnitude]^(k k C).
        """
        method = check.choice(method, "method", METHODS)
        if outer is not None:
            outer = check.choice(outer, "outer", METHODS[:-1])
        magnitude = check.finite_float(magnitude, "magnitude", minimum=0.0)
        if method == "box" and magnitude == 0.0:
            raise ValueError("magnitude must be positive for box init")
        rng = np.random.default_rng(check.seed(seed))
        full = Params(self._global_layout, dtype=self.dtype)
        C, L, kk = self.channels, self.n_layers, self.kernel_size ** 2
        c_in = self.in_shape[0]
        if outer is None:
            outer = "glorot" if method == "box" else method
        if self.opening != "padding":
            full.W_in[...] = _fill_dense(rng, outer, full.W_in.shape, c_in * kk, C * kk,
                                         magnitude)
            if outer == "uniform":
                full.b_in[...] = rng.uniform(-magnitude, magnitude, size=C)
        if method == "box":
            W, b = box_layers(rng, L, C, magnitude, self.activation, self.eta, fan_in=C * kk)
            full.W[...] = W.reshape(full.W.shape)
            full.b[...] = b
        else:
            full.W[...] = _fill_dense(rng, method, full.W.shape, C * kk, C * kk, magnitude)
            if method == "uniform":
                full.b[...] = rng.uniform(-magnitude, magnitude, size=(L, C))
        F = self.features
        full.W_out[...] = _fill_dense(rng, outer, (self.n_out, F), F, self.n_out, magnitude)
        if outer == "uniform":
            full.b_out[...] = rng.uniform(-magnitude, magnitude, size=self.n_out)
        return full if not self.distributed else self.scatter(full.data)

    # ---- data -----------------------------------------------------------
    def check_inputs(self, X, name="X"):
        """X as a C-contiguous (n, C_in, H, W) array of the network's dtype, else
        ValueError."""
        X = check.float_array(X, name, 4, dtype=self.dtype)
        if X.shape[1:] != self.in_shape:
            raise ValueError(f"{name} must have shape (n, {', '.join(map(str, self.in_shape))})"
                             f" (images as (n, C_in, H, W)), got {X.shape}")
        return X

    def _X(self, X):
        X = self.check_inputs(X)
        return X.reshape(X.shape[0], -1)

    def _images(self, U):
        """Channels-last final states (n, H W C) from the core as (n, C, H, W)."""
        _, height, width = self.in_shape
        U = U.reshape(U.shape[0], height, width, self.channels)
        return np.ascontiguousarray(U.transpose(0, 3, 1, 2))

    # ---- propagation ----------------------------------------------------
    def forward(self, theta, X, solver=None):
        """Final states u_N (n, C, H, W); with a solver, (u_N, info)."""
        out = super().forward(theta, X, solver)
        if solver is None:
            return self._images(out)
        return self._images(out[0]), out[1]

    def predict(self, theta, X):
        """Logits W_out f(u_N) + b_out (n, n_out)."""
        if not self.distributed:
            return self._model.predict(self._theta(theta), self._X(X))
        p = theta if isinstance(theta, Params) else Params(self._layout, self._theta(theta))
        U = self.forward(theta, X)
        f = U.mean(axis=(2, 3)) if self.pooling == "average" else U.reshape(U.shape[0], -1)
        return f @ p.W_out.T + p.b_out

    def accuracy(self, theta, X, Y):
        """Fraction of images whose largest logit is the target's class."""
        with collective.checks(self._agreeing(), "checking the arguments"):
            X = self.check_inputs(X)
            Y = self._Y(Y, X.shape[0])
        return float(np.mean(np.argmax(self.predict(theta, X), axis=1) == np.argmax(Y, axis=1)))

    def __repr__(self):
        return (f"ConvODEResNet(in_shape={self.in_shape}, channels={self.channels}, "
                f"n_layers={self.n_layers}, n_out={self.n_out}, T={self.T}, "
                f"kernel_size={self.kernel_size}, activation={self.activation!r}, "
                f"opening={self.opening!r}, pooling={self.pooling!r}"
                + (f", dtype={self.dtype.name!r})" if self.dtype != np.float64 else ")"))
