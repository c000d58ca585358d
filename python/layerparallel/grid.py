"""lp.ProcessGrid: ranks as a P_l x P_d grid, layers along one axis, data along the other.

    grid = lp.ProcessGrid(MPI.COMM_WORLD, layers=2, data=2)
    net = grid.network(n_in=2, width=8, n_layers=64, n_out=5)
    solver = grid.mgrit(cfactor=4)
    hist = lp.train(net, net.init("box"), X, Y, optimizer, solver=solver)

Rank ``d P_l + l`` is layer rank ``l`` of data group ``d``. The P_l ranks of a
group share the layers (``layer_comm``: MGRIT or serial propagation across
them, exactly as a network on that communicator); the P_d groups split every
batch into contiguous shares and sum their share-weighted losses and
gradients (``data_comm``: one allreduce of this rank's parameters per
evaluation). P_l = 1 is plain data parallelism, P_d = 1 plain layer
parallelism. Every group holds the same parameters, so every optimizer takes
the same steps as on one rank.
"""

import numpy as np

from ._validation import positive_int
from .mgrit import MGRIT, comm_handle
from .network import ODEResNet


def share(n, parts, index):
    """Rows [floor(n i/P), floor(n (i+1)/P)) of part ``index`` of ``parts``."""
    return slice(n * index // parts, n * (index + 1) // parts)


class ProcessGrid:
    """A ``layers x data`` grid over the ranks of ``comm`` (None: one rank).

    Give ``layers``, ``data`` or both; a missing one is the rest of the ranks
    (neither: all ranks share the layers). ``layers * data`` must equal the
    number of ranks.

    Attributes: ``comm``, ``rank``, ``size``; ``layers``, ``data`` (the
    shape); ``layer_comm``, ``layer_rank`` (ranks sharing the layers of one
    group); ``data_comm``, ``data_rank`` (the ranks holding the same layers in
    every group). A communicator of size 1 is None, as everywhere in the
    package.
    """

    def __init__(self, comm=None, layers=None, data=None):
        _, self.rank, self.size = comm_handle(comm)
        if layers is None and data is None:
            layers = self.size
        if layers is not None:
            layers = positive_int(layers, "layers")
        if data is not None:
            data = positive_int(data, "data")
        if layers is None:
            if self.size % data:
                raise ValueError(f"data={data} does not divide the {self.size} ranks")
            layers = self.size // data
        if data is None:
            if self.size % layers:
                raise ValueError(f"layers={layers} does not divide the {self.size} ranks")
            data = self.size // layers
        if layers * data != self.size:
            raise ValueError(f"a {layers}x{data} grid needs {layers * data} ranks, "
                             f"but comm has {self.size}")
        self.comm = comm if self.size > 1 else None
        self.layers, self.data = layers, data
        self.layer_rank, self.data_rank = self.rank % layers, self.rank // layers
        self.layer_comm = self._split(self.data_rank, self.layer_rank, layers)
        self.data_comm = self._split(self.layer_rank, self.data_rank, data)

    def _split(self, color, key, size):
        if self.comm is None:
            return None
        sub = self.comm.Split(color, key)
        if size == 1:
            sub.Free()
            return None
        return sub

    @property
    def shape(self):
        return (self.layers, self.data)

    def rows(self, n):
        """This group's share of ``n`` batch rows (a slice)."""
        return share(n, self.data, self.data_rank)

    def mgrit(self, **options):
        """lp.MGRIT over this group's layer ranks."""
        return MGRIT(comm=self.layer_comm, **options)

    def network(self, *args, **kwargs):
        """An lp.ODEResNet on ``layer_comm`` (arguments as ODEResNet's, no comm);
        with several data groups wrapped so that batches are split over them."""
        if "comm" in kwargs:
            raise ValueError("grid.network takes no comm: the grid decides it")
        net = ODEResNet(*args, comm=self.layer_comm, **kwargs)
        return net if self.data == 1 else DataParallelNet(net, self)

    def __repr__(self):
        return f"ProcessGrid(layers={self.layers}, data={self.data})"


class DataParallelNet:
    """An lp.ODEResNet on one group's layer ranks, with every batch split over
    the grid's data groups.

    ``loss``, ``loss_and_grad`` (with or without a solver), ``forward``,
    ``predict`` and ``accuracy`` take the whole batch on every rank and return
    the whole-batch results: each group evaluates its rows, the results are
    weighted by their share of the rows and summed over ``data_comm`` (states
    and outputs gathered). ``rank``, ``size`` and ``comm`` are the whole
    grid's (checkpoints, logging, collective checks); everything else is the
    inner network's (``net.inner``).
    """

    def __init__(self, net, grid):
        if not isinstance(net, ODEResNet):
            raise ValueError(f"net must be an lp.ODEResNet, got {net!r}")
        self.inner, self.grid = net, grid
        self.comm, self.rank, self.size = grid.comm, grid.rank, grid.size
        self.data_comm = grid.data_comm

    def __getattr__(self, name):  # everything not overridden: the inner network's
        if name in ("inner", "grid"):
            raise AttributeError(name)
        return getattr(self.inner, name)

    @property
    def distributed(self):
        return self.size > 1

    def _split(self, X, Y=None):
        X = self.inner._X(X)
        n = X.shape[0]
        if n < self.grid.data:
            raise ValueError(f"a batch of {n} rows cannot be split over "
                             f"{self.grid.data} data groups")
        rows = self.grid.rows(n)
        if Y is None:
            return X[rows], None, (rows.stop - rows.start) / n
        Y = self.inner._Y(Y, n)
        return X[rows], Y[rows], (rows.stop - rows.start) / n

    def _sum(self, values):
        """Sum of a float64 vector over the data groups (in place)."""
        from mpi4py import MPI

        self.data_comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
        return values

    def _gather(self, rows):
        parts = self.data_comm.allgather(rows)
        return np.ascontiguousarray(np.concatenate(parts, axis=0))

    def loss(self, theta, X, Y, solver=None):
        Xs, Ys, w = self._split(X, Y)
        J = self.inner.loss(theta, Xs, Ys, solver=solver)
        return float(self._sum(np.array([w * J]))[0])

    def loss_and_grad(self, theta, X, Y, solver=None):
        Xs, Ys, w = self._split(X, Y)
        out = self.inner.loss_and_grad(theta, Xs, Ys, solver=solver)
        J, grad = out[0], out[1]
        buf = np.empty(grad.size + 1)
        buf[0] = w * J
        np.multiply(grad.data, w, out=buf[1:])
        self._sum(buf)
        grad.data[...] = buf[1:]
        return (float(buf[0]), grad) if solver is None else (float(buf[0]), grad, out[2])

    def forward(self, theta, X, solver=None):
        Xs, _, _ = self._split(X)
        out = self.inner.forward(theta, Xs, solver=solver)
        if solver is None:
            return self._gather(out)
        return self._gather(out[0]), out[1]

    def predict(self, theta, X):
        Xs, _, _ = self._split(X)
        return self._gather(self.inner.predict(theta, Xs))

    def accuracy(self, theta, X, Y):
        if self.inner.head != "classification":
            raise ValueError("accuracy needs head='classification'")
        Xs, Ys, w = self._split(X, Y)
        return float(self._sum(np.array([w * self.inner.accuracy(theta, Xs, Ys)]))[0])

    def __repr__(self):
        return f"{self.inner!r} on {self.grid!r}"
