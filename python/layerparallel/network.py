"""lp.ODEResNet: the ODE-ResNet over the compiled core.

    u_0 = sigma(W_in y + b_in)                       (opening layer)
    u_{n+1} = u_n + h sigma(W_n u_n + b_n),  h = T/N  (N residual layers)
    J = 1/|S| sum_k loss(W_out u_N + b_out, c_k) + regularization

Every method validates its arguments here, then makes one call into C++ that
runs the whole sweep.
"""

import math
import warnings

import numpy as np

from . import _collective as collective
from . import _core
from . import _validation as check
from . import devices
from .init import initialize
from .mgrit import MGRIT, comm_handle, serial_options, with_rho
from .params import Params

ACTIVATIONS = ("relu", "tanh", "smoothrelu")
OPENINGS = ("activation", "linear", "padding")
HEADS = ("classification", "regression")
DTYPES = ("float64", "float32")
MAX_WIDTH = 1 << 16
MAX_LAYERS = 1 << 24
_NO_Y = object()  # forward and predict take no targets


class ODEResNet:
    """An ODE-ResNet of ``n_layers`` residual layers of ``width`` on [0, T].

    Parameters
    ----------
    n_in, width, n_layers, n_out : int
        Input features, state width w, residual layers N, outputs (classes).
    T : float
        Final time; the step size is h = T / n_layers.
    activation : "relu" | "tanh" | "smoothrelu"
        sigma. smoothrelu is relu with the kink replaced by (x + eta)^2/(4 eta)
        on |x| < eta (C^1).
    opening : "activation" | "linear" | "padding"
        u_0 = sigma(W_in y + b_in), W_in y + b_in, or y padded with zeros to
        width w (needs n_in <= width; no opening parameters).
    head : "classification" | "regression"
        Softmax cross-entropy of W_out u_N + b_out against (one-hot) targets,
        or half the mean squared error 1/(2|S|) sum_k ||W_out u_N + b_out - c_k||^2.
    gamma_tik, gamma_ddt, gamma_out : float >= 0
        Tikhonov gamma_tik/2 h sum_n ||theta_n||^2, time-derivative
        gamma_ddt/2 h sum_n ||(theta_{n+1} - theta_n)/h||^2 and opening/head
        gamma_out/2 (||W_in||^2 + ||b_in||^2 + ||W_out||^2 + ||b_out||^2).
    eta : float > 0
        Half-width of smoothrelu's quadratic blend.
    comm : mpi4py communicator or None
        Distribute the residual layers over its ranks: rank r holds layers
        [floor(N r/P), floor(N (r+1)/P)); parameters (``init``, gradients) are
        then this rank's part, ``Params.gather()`` gives the whole vector. The
        opening layer and the head are replicated.
    device : "cpu" | "cuda" | "cuda:K"
        Where the residual layers run (forward, adjoint, gradients and MGRIT
        sweeps). "cuda" keeps them on the device for a whole evaluation; it
        needs the CUDA build and a visible device (else ValueError).
    dtype : "float64" | "float32"
        The scalar of parameters, states and gradients (numpy dtypes and
        np.float32/np.float64 are accepted too). A float32 network takes
        float32 Params; data (X, Y) and plain theta arrays of another dtype
        are converted to float32 once per call (``lp.train`` converts the
        data set once). Losses and residual norms are summed in float64.
    """

    # The host unless __init__ resolves a device (subclasses that run on the
    # host only, such as the convolutional net, keep these).
    _device = -1
    device = "cpu"
    dtype = np.dtype(np.float64)

    def __init__(self, n_in, width, n_layers, n_out, T=5.0, activation="smoothrelu",
                 opening="activation", head="classification", gamma_tik=0.0, gamma_ddt=0.0,
                 gamma_out=0.0, eta=0.1, comm=None, device="cpu", dtype="float64"):
        self.comm = comm
        self._handle, self.rank, self.size = comm_handle(comm)
        # Every rank must build the same network: checks and configuration agreed.
        with collective.checks(self._agreeing(), "creating the ODEResNet") as agreed:
            self._configure(n_in, width, n_layers, n_out, T, activation, opening, head,
                            gamma_tik, gamma_ddt, gamma_out, eta)
            self.dtype = parse_dtype(dtype)
            agreed.fingerprint = {"network": self._config(), "ranks": self.size}
        self._device = devices.resolve(device, comm)  # agreed over the ranks itself
        self.device = "cpu" if self._device < 0 else f"cuda:{self._device}"
        # The configuration crosses into C++ once, as one object the models share.
        self._net_config = _core.NetConfig(
            n_in=self.n_in, width=self.width, n_layers=self.n_layers, n_out=self.n_out, T=self.T,
            activation=self.activation, eta=self.eta, opening=self.opening, head=self.head,
            gamma_tik=self.gamma_tik, gamma_ddt=self.gamma_ddt, gamma_out=self.gamma_out)
        self._model = self._core_class("SerialModel")(self._net_config)
        self._global_layout = self._model.layout()
        firsts = list(_core.first_layers(self.n_layers, self.size)) + [self.n_layers]
        self.first_layer = firsts[self.rank]
        self.n_local_layers = firsts[self.rank + 1] - firsts[self.rank]
        self._layout = self.block_layout(self.first_layer, self.n_local_layers)
        self._solvers = {}

    def _config(self):
        """The configuration as plain values (what ranks agree on)."""
        return (self.n_in, self.width, self.n_layers, self.n_out, self.T, self.activation,
                self.eta, self.opening, self.head, self.gamma_tik, self.gamma_ddt,
                self.gamma_out, self.dtype.name)

    def _core_class(self, name):
        """The compiled class `name` for this network's scalar (float32: `name`32)."""
        return getattr(_core, name + ("32" if self.dtype == np.float32 else ""))

    def block_layout(self, first_layer, n_layers):
        """Layout of a parameter vector holding layers [first_layer, first_layer + n_layers)."""
        return _core.param_layout(self._net_config, first_layer, n_layers)

    def _configure(self, n_in, width, n_layers, n_out, T, activation, opening, head,
                   gamma_tik, gamma_ddt, gamma_out, eta):
        self.n_in = check.positive_int(n_in, "n_in", MAX_WIDTH)
        self.width = check.positive_int(width, "width", MAX_WIDTH)
        self.n_layers = check.positive_int(n_layers, "n_layers", MAX_LAYERS)
        self.n_out = check.positive_int(n_out, "n_out", MAX_WIDTH)
        self.T = check.finite_float(T, "T", strictly_positive=True)
        self.activation = check.choice(activation, "activation", ACTIVATIONS)
        self.opening = check.choice(opening, "opening", OPENINGS)
        self.head = check.choice(head, "head", HEADS)
        self.gamma_tik = check.finite_float(gamma_tik, "gamma_tik", minimum=0.0)
        self.gamma_ddt = check.finite_float(gamma_ddt, "gamma_ddt", minimum=0.0)
        self.gamma_out = check.finite_float(gamma_out, "gamma_out", minimum=0.0)
        self.eta = check.finite_float(eta, "eta", strictly_positive=True)
        if not (self.h >= 1e-150 and math.isfinite(self.n_layers / self.T)):
            raise ValueError(f"T is too small for {self.n_layers} layers: h = T/n_layers = {self.h!r}")
        if self.opening == "padding" and self.n_in > self.width:
            raise ValueError(
                f"opening='padding' needs n_in <= width, got n_in={self.n_in}, width={self.width}"
            )
        if self.size > self.n_layers:
            raise ValueError(f"comm has {self.size} ranks but the net only {self.n_layers} "
                             "layers: every rank needs at least one layer")

    def _agreeing(self):
        """The communicator checks are agreed over (None on one rank)."""
        return self.comm if self.size > 1 else None

    def _inputs(self, theta, X, Y=_NO_Y, solver=None):
        """theta, X (and Y) checked, and the solver matched to this network. On
        several ranks every rank learns of any rank's failed check, and the
        data shapes and the solver's options must agree (else the ranks would
        wait on each other's messages forever)."""
        with collective.checks(self._agreeing(), "checking the arguments") as agreed:
            X = self._X(X)
            Y = None if Y is _NO_Y else self._Y(Y, X.shape[0])
            theta = self._theta(theta)
            if solver is not None:
                self._check_solver(solver)
            if self.distributed:
                agreed.fingerprint = {
                    "X shape": X.shape, "Y shape": None if Y is None else Y.shape,
                    "solver": None if solver is None else repr(solver._key()[:-1])}
        return theta, X, Y

    @property
    def distributed(self):
        """Whether the layers are spread over several ranks."""
        return self.size > 1

    @property
    def _host_serial(self):
        """Whether a call without solver runs the host's serial sweeps."""
        return not self.distributed and self._device < 0

    def _parallel_model(self, solver):
        """The compiled layer-parallel model for this solver (cached: it keeps
        the states that warm starts begin from)."""
        if solver is None:
            key, opts, handle = "serial", serial_options(), self._handle
        else:
            self._check_solver(solver)
            key, opts, handle = solver._key(), solver.options(), self._handle
        model = self._solvers.get(key)
        if model is None and solver is not None and self.dtype == np.float32:
            _warn_float32_tolerance(solver)
        if model is None:
            model = self._core_class("LayerParallelModel")(self._net_config, opts, handle,
                                                           self._device)
            self._solvers[key] = model
        return model

    def _check_solver(self, solver):
        if not isinstance(solver, MGRIT):
            raise ValueError(f"solver must be an lp.MGRIT, got {solver!r}")
        if solver.size != self.size or (self.size > 1 and solver.rank != self.rank):
            raise ValueError(
                f"solver's comm ({solver.size} ranks) does not match the network's "
                f"({self.size}); create the network with the same comm=")

    # ---- parameters -----------------------------------------------------
    @property
    def h(self):
        """Step size T / n_layers."""
        return self.T / self.n_layers

    @property
    def n_params(self):
        return self._model.size

    def new_params(self):
        """Zero parameters with this network's (this rank's) layout."""
        return Params(self._layout, dist=self._dist(), dtype=self.dtype)

    def _dist(self):
        if not self.distributed:
            return None
        return (self.comm, self._global_layout, self.first_layer, self.n_local_layers)

    def init(self, method="box", seed=0, magnitude=1.0, outer=None):
        """New lp.Params initialized by ``method``.

        "zeros"; "uniform": every entry uniform in [-magnitude, magnitude];
        "he": weights N(0, 2/fan_in), biases 0; "glorot": weights
        U(-a, a), a = sqrt(6/(fan_in + fan_out)), biases 0; "box": the residual
        layers by Box initialization on [0, magnitude]^w, the
        opening layer and head by Glorot. ``outer`` picks another initializer
        for the opening layer and head (e.g. small uniform hidden layers with
        Glorot outer layers, which need random weights to break symmetry).
        """
        full = initialize(self, Params(self._global_layout, dtype=self.dtype), method, seed,
                          magnitude, outer)
        return full if not self.distributed else self.scatter(full.data)

    def scatter(self, full):
        """This rank's lp.Params from a whole parameter vector (the inverse of
        ``Params.gather``): its own residual layers and the replicated opening
        layer and head. Every rank passes the same vector; nothing travels."""
        return self.new_params().scatter(full)

    def _theta(self, theta):
        """The flat vector of ``theta`` (Params or array) in this network's
        dtype, checked. Params of the other dtype are refused (they are the
        optimizer's state); plain arrays are converted."""
        if isinstance(theta, Params):
            if theta.layout != self._layout:
                raise ValueError("theta: Params layout does not match this network")
            if theta.dtype != self.dtype:
                raise ValueError(f"theta: Params of dtype {theta.dtype} for a {self.dtype} "
                                 f"network; create them with this network's init() or "
                                 f"new_params()")
            data = theta.data
        else:
            data = check.float_array(theta, "theta", 1, dtype=self.dtype)
            if data.shape[0] != self.n_params:
                raise ValueError(
                    f"theta must have {self.n_params} entries, got {data.shape[0]}")
            return data
        if not np.isfinite(data).all():
            raise ValueError("theta contains NaN or Inf")
        return data

    def _X(self, X):
        return check.float_array(X, "X", 2, columns=self.n_in, dtype=self.dtype)

    def _Y(self, Y, rows):
        Y = check.float_array(Y, "Y", 2, columns=self.n_out, rows=rows, dtype=self.dtype)
        if self.head == "classification" and (Y < 0).any():
            raise ValueError("Y: classification targets must be nonnegative (one-hot rows)")
        return Y

    # ---- propagation ----------------------------------------------------
    # Without a solver on one rank: the serial sweeps. With an lp.MGRIT solver,
    # or on several ranks: the layer-parallel model (one level = serial
    # propagation across the ranks).
    def _warm(self, solver):
        return solver is not None and solver.warm_start

    def forward(self, theta, X, solver=None):
        """Final states u_N (n, width); with a solver, (u_N, info)."""
        theta, X, _ = self._inputs(theta, X, solver=solver)
        if solver is None and self._host_serial:
            return self._model.forward(theta, X)
        U, info = self._parallel_model(solver).forward(theta, X, self._warm(solver))
        return U if solver is None else (U, with_rho(info))

    def predict(self, theta, X):
        """Head output W_out u_N + b_out (n, n_out): logits or regression values."""
        if self._host_serial:
            return self._model.predict(self._theta(theta), self._X(X))
        U = self.forward(theta, X)  # checks theta and X on every rank
        p = theta if isinstance(theta, Params) else Params(self._layout, self._theta(theta))
        # U and p are in the network's dtype, so the output is too.
        return U @ p.W_out.T + p.b_out

    def loss(self, theta, X, Y, solver=None):
        """J(theta) on (X, Y), including regularization."""
        theta, X, Y = self._inputs(theta, X, Y, solver)
        if solver is None and self._host_serial:
            return self._model.loss_and_grad(theta, X, Y, None)
        return self._parallel_model(solver).loss_and_grad(theta, X, Y, None,
                                                          self._warm(solver))[0]

    def loss_and_grad(self, theta, X, Y, solver=None):
        """(J, dJ/dtheta as lp.Params); with an lp.MGRIT solver (J, grad, info).

        Without a solver: serial forward and backward propagation. With one,
        the forward and the adjoint propagation are MGRIT solves across the
        layers, then every layer's gradient is computed from u_n and
        lambda_{n+1}; info = {"forward": {...}, "adjoint": {...}} with the
        iterations, residual history, average convergence factor "rho" and
        step count of each solve.
        """
        theta, X, Y = self._inputs(theta, X, Y, solver)
        grad = self.new_params()
        if solver is None and self._host_serial:
            return self._model.loss_and_grad(theta, X, Y, grad.data), grad
        J, info = self._parallel_model(solver).loss_and_grad(theta, X, Y, grad.data,
                                                             self._warm(solver))
        if solver is None:
            return J, grad
        return J, grad, {k: with_rho(v) for k, v in info.items()}

    def accuracy(self, theta, X, Y):
        """Fraction of rows whose largest logit is the target's class."""
        if self.head != "classification":
            raise ValueError("accuracy needs head='classification'")
        with collective.checks(self._agreeing(), "checking the arguments"):
            X = self._X(X)
            Y = self._Y(Y, X.shape[0])
        return float(np.mean(np.argmax(self.predict(theta, X), axis=1) == np.argmax(Y, axis=1)))

    def __repr__(self):
        return (f"ODEResNet(n_in={self.n_in}, width={self.width}, n_layers={self.n_layers}, "
                f"n_out={self.n_out}, T={self.T}, activation={self.activation!r}, "
                f"opening={self.opening!r}, head={self.head!r}"
                + (f", device={self.device!r}" if self._device >= 0 else "")
                + (f", dtype={self.dtype.name!r})" if self.dtype != np.float64 else ")"))


def _warn_float32_tolerance(solver):
    """A float32 residual stalls near float32 rounding of the states (~1e-7 of
    their size): an absolute tolerance far below that makes every solve run
    max_iter cycles. Said once per solver configuration (models are cached)."""
    if solver.rtol is None and solver.tol is not None and solver.tol < 1e-6:
        warnings.warn(f"float32 network with an absolute MGRIT tolerance tol={solver.tol:g}: "
                      "float32 residuals stop near 1e-7 of the states, so the solves may run "
                      f"all max_iter={solver.max_iter} cycles; give rtol (e.g. 1e-5, with "
                      "tol=None) or a fixed cycle count", RuntimeWarning, stacklevel=4)


def parse_dtype(dtype):
    """np.dtype float64 or float32 from a name, numpy dtype or type; else ValueError."""
    try:
        dt = None if dtype is None else np.dtype(
            dtype.strip().lower() if isinstance(dtype, str) else dtype)
    except (TypeError, ValueError):
        dt = None
    if dt is None or dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(repr(d) for d in DTYPES)}, "
                         f"got {dtype!r}")
    return dt
