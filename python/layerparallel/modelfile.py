"""Model files: one .npz with a network's configuration and its whole parameter vector.

    lp.save("model.npz", net, theta)      # collective on net's ranks; rank 0 writes
    net, theta = lp.load("model.npz", comm=None)

The file holds plain arrays only (read with allow_pickle=False): "format",
"network" (JSON: the class -- ODEResNet or ConvODEResNet -- and its
constructor arguments, "dtype" among them), "theta" (the whole vector as
``Params.gather`` gives it, in the network's dtype: float64, or float32) and
"version". Files without a "dtype" hold float64 networks. It does not
depend on the number of ranks that wrote it; ``load`` distributes the layers
over whatever communicator it is given.
"""

import json
import os
import tempfile

import numpy as np

from . import _collective as collective
from .conv_network import ConvODEResNet
from .network import ODEResNet, parse_dtype
from .params import Params

FORMAT = 1
# Network classes a model file can hold, by name, with the constructor
# arguments that describe them.
NETWORKS = {"ODEResNet": ODEResNet, "ConvODEResNet": ConvODEResNet}
_CONFIG_KEYS = {
    "ODEResNet": ("n_in", "width", "n_layers", "n_out", "T", "activation", "opening", "head",
                  "gamma_tik", "gamma_ddt", "gamma_out", "eta"),
    "ConvODEResNet": ("in_shape", "channels", "n_layers", "n_out", "T", "kernel_size",
                      "activation", "opening", "pooling", "gamma_tik", "gamma_ddt",
                      "gamma_out", "eta"),
}


def _config(net):
    """The constructor arguments that rebuild ``net`` (JSON-ready), dtype included."""
    config = {k: getattr(net, k) for k in _CONFIG_KEYS[type(net).__name__]}
    if "in_shape" in config:
        config["in_shape"] = list(config["in_shape"])  # JSON has no tuples
    config["dtype"] = net.dtype.name
    return config


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path, write):
    """``write(f)`` into a temporary file in the same directory, fsync and rename;
    the file gets the permissions a plain open() would (0666 less the umask)."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".layerparallel.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(path, net, theta):
    """Write ``net`` and ``theta`` to the model file ``path`` (atomically).

    On several ranks every rank of ``net.comm`` must call (the parameters are
    gathered); rank 0 writes, and a failure to write raises on every rank. A
    data-parallel network of an lp.ProcessGrid is saved as its inner network.
    """
    # A data-parallel wrapper holds one group's network; its comm and rank are
    # the whole grid's, so one rank of the grid writes.
    inner = getattr(net, "inner", net)
    if type(inner) not in NETWORKS.values():
        raise ValueError(f"save supports {', '.join(NETWORKS)}; got {type(net).__name__}")
    path = os.fspath(path)
    comm = net.comm if net.size > 1 else None
    # Layout and finiteness are checked per rank: agreed before the gather.
    with collective.checks(comm, f"saving the model file {path}"):
        local = inner._theta(theta)
    full = theta.gather() if isinstance(theta, Params) else local
    error = None
    if net.rank == 0:
        from . import __version__

        cls = type(inner).__name__
        spec = {"class": cls, "config": _config(inner)}
        arrays = {"format": np.array(FORMAT), "network": np.array(json.dumps(spec)),
                  "theta": np.ascontiguousarray(full, dtype=inner.dtype),
                  "version": np.array(__version__)}
        try:
            write_atomic(path, lambda f: np.savez(f, **arrays))
        except OSError as exc:
            error = ValueError(f"cannot write the model file {path}: {exc.strerror or exc}")
    collective.agree(comm, error, what=f"writing the model file {path}")


def _read(path):
    """(network spec, theta) from the file; ValueError naming the problem."""
    if not os.path.exists(path):
        raise ValueError(f"model file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"model file {path} is unreadable: {exc}") from None
    for key in ("format", "network", "theta"):
        if key not in arrays:
            raise ValueError(f"model file {path} lacks '{key}' (not a layerparallel model file)")
    if arrays["format"].shape != () or int(arrays["format"]) != FORMAT:
        raise ValueError(f"model file {path} has format {arrays['format']}, expected {FORMAT}")
    try:
        spec = json.loads(str(arrays["network"]))
        cls, config = spec["class"], spec["config"]
        if not isinstance(config, dict):
            raise TypeError("config is not a JSON object")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"model file {path}: bad network description ({exc})") from None
    if cls not in NETWORKS:
        raise ValueError(f"model file {path} holds a {cls!r}; this version reads "
                         f"{', '.join(NETWORKS)}")
    theta = arrays["theta"]
    dtype = config.get("dtype", "float64") if isinstance(config, dict) else "float64"
    if theta.dtype != np.dtype(dtype) or theta.ndim != 1:
        raise ValueError(f"model file {path}: theta must be a 1-d {dtype} array, "
                         f"got {theta.dtype} {theta.shape}")
    if not np.isfinite(theta).all():
        raise ValueError(f"model file {path}: theta contains NaN or Inf")
    return cls, config, theta


def load(path, comm=None, dtype=None, device="cpu"):
    """(net, theta) from the model file ``path``, distributed over ``comm``.

    With a communicator of several ranks every rank must call; rank 0 reads
    the file and sends it to the others (it need not be on a shared file
    system), and an unusable file raises on every rank. The network gets the
    file's dtype; a ``dtype`` given ("float64" or "float32") must match it
    (ValueError on every rank otherwise: convert by building a network of the
    other dtype and scattering ``theta.gather()`` into its Params).
    ``device``: where a dense net's residual layers run ("cpu", "cuda",
    "cuda:K"; see lp.ODEResNet).
    """
    path = os.fspath(path)
    dtype = None if dtype is None else parse_dtype(dtype)
    several = comm is not None and comm.Get_size() > 1
    rank = comm.Get_rank() if several else 0
    spec, error = None, None
    if rank == 0:
        try:
            cls, config, full = _read(path)
            if dtype is not None and full.dtype != dtype:
                raise ValueError(f"model file {path} holds a {full.dtype} network, "
                                 f"dtype={dtype.name!r} was asked for")
            whole = NETWORKS[cls](**config)  # checked here, before any rank builds it
            if full.shape[0] != whole.n_params:
                raise ValueError(f"model file {path}: theta has {full.shape[0]} entries, "
                                 f"the network needs {whole.n_params}")
            spec = (cls, config, full.shape[0], full.dtype.name)
        except (ValueError, TypeError) as exc:
            error = ValueError(f"{exc}" if path in str(exc) else f"model file {path}: {exc}")
    collective.agree(comm if several else None, error, what=f"reading the model file {path}")
    if several:
        spec = comm.bcast(spec, root=0)
        if rank != 0:
            full = np.empty(spec[2], dtype=spec[3])
        comm.Bcast(full, root=0)
    cls, config, _, _ = spec
    with collective.checks(comm if several else None, f"loading the model file {path}"):
        if device != "cpu" and cls != "ODEResNet":
            raise ValueError(f"device={device!r}: only dense ODE-ResNets run on a device, "
                             f"this model file holds a {cls}")
    extra = {} if device == "cpu" else {"device": device}
    net = NETWORKS[cls](**config, comm=comm, **extra)
    return net, net.new_params().scatter(full)


def convert(net, theta, dtype):
    """(net, theta) in another dtype ("float64" or "float32"): the same network
    and parameters, rounded (float64 to float32) or widened (exactly). Collective
    on net's ranks (the parameters are gathered); returns the inputs unchanged
    when the dtype already matches."""
    dtype = parse_dtype(dtype)
    if net.dtype == dtype:
        return net, theta
    if type(net) not in NETWORKS.values():
        raise ValueError(f"convert supports {', '.join(NETWORKS)}; got {type(net).__name__}")
    full = theta.gather() if isinstance(theta, Params) else net._theta(theta)
    config = dict(_config(net), dtype=dtype)
    if type(net) is ODEResNet:  # the conv net runs on the host only
        config["device"] = net.device
    other = type(net)(**config, comm=net.comm)
    return other, other.scatter(full.astype(dtype))
