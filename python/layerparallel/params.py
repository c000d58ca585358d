"""lp.Params: all parameters of a network in one flat buffer (float64, or
float32 for a network built with dtype="float32").

Optimizers, MPI reductions and checkpoints work on the flat vector ``.data``;
people read and write the named views ``.W_in .b_in .W .b .W_out .b_out``,
which are numpy views into that same buffer (no copies).
"""

import numpy as np

BLOCKS = ("W_in", "b_in", "W", "b", "W_out", "b_out")


class Params:
    """Flat parameter vector with named views.

    ``W`` has shape (layers, width, width) and ``b`` (layers, width) for the
    residual layers; ``W_in`` (width, n_in), ``b_in`` (width), ``W_out``
    (n_out, width) and ``b_out`` (n_out) for the opening layer and the head
    (``W_in`` and ``b_in`` are empty for opening="padding").
    """

    __slots__ = ("_layout", "_size", "_data", "_dist", "_dtype")

    def __init__(self, layout, data=None, dist=None, dtype=None):
        """``dtype`` (float64 or float32) is that of ``data`` when given, else float64."""
        self._layout = dict(layout)
        self._dist = dist  # (comm, global layout, first layer, layers here) when distributed
        self._size = max(off + int(np.prod(shape)) for off, shape in self._layout.values())
        if dtype is None:
            dtype = np.asarray(data).dtype if data is not None else np.float64
        self._dtype = np.dtype(dtype)
        if self._dtype not in (np.float64, np.float32):
            raise ValueError(f"Params dtype must be float64 or float32, got {self._dtype}")
        if data is None:
            self._data = np.zeros(self._size, dtype=self._dtype)
        else:
            self.data = data

    @property
    def dtype(self):
        """numpy dtype of the buffer: float64, or float32 for a float32 network."""
        return self._dtype

    @property
    def data(self):
        """The flat buffer (of ``dtype``) that every view shares."""
        return self._data

    @data.setter
    def data(self, value):
        arr = np.asarray(value)
        if arr.dtype != self._dtype or arr.ndim != 1 or arr.shape[0] != self._size:
            raise ValueError(
                f"Params.data must be a 1-d {self._dtype} array of length {self._size}, "
                f"got dtype {arr.dtype} shape {arr.shape}"
            )
        self._data = np.ascontiguousarray(arr)

    @property
    def size(self):
        return self._size

    @property
    def layout(self):
        """{block name: (offset, shape)} in ``.data``."""
        return dict(self._layout)

    def _view(self, name):
        off, shape = self._layout[name]
        return self._data[off : off + int(np.prod(shape))].reshape(shape)

    W_in = property(lambda self: self._view("W_in"), doc="Opening weights (width, n_in).")
    b_in = property(lambda self: self._view("b_in"), doc="Opening bias (width,).")
    W = property(lambda self: self._view("W"), doc="Residual weights (layers, width, width).")
    b = property(lambda self: self._view("b"), doc="Residual biases (layers, width).")
    W_out = property(lambda self: self._view("W_out"), doc="Head weights (n_out, width).")
    b_out = property(lambda self: self._view("b_out"), doc="Head bias (n_out,).")

    def copy(self):
        """A deep copy (new buffer, same layout)."""
        return Params(self._layout, self._data.copy(), self._dist)

    def zeros_like(self):
        return Params(self._layout, dist=self._dist, dtype=self._dtype)

    @property
    def distributed(self):
        return self._dist is not None

    def gather(self):
        """The whole parameter vector on every rank (a copy).

        On one rank that is ``.data``; on several, the residual layers of all
        ranks in order (one buffer-based Allgatherv of this rank's contiguous
        W and b blocks) with the replicated opening layer and head.
        """
        if self._dist is None:
            return self._data.copy()
        from mpi4py import MPI

        comm, layout, _, _ = self._dist
        full = Params(layout, dtype=self._dtype)
        counts = np.empty(comm.Get_size(), dtype=np.int64)
        comm.Allgather(np.array([self.W.shape[0]], dtype=np.int64), counts)
        for name in ("W", "b"):
            mine = self._view(name)
            per_layer = int(np.prod(mine.shape[1:]))
            n = counts * per_layer
            displ = np.concatenate([[0], np.cumsum(n)[:-1]])
            comm.Allgatherv(np.ascontiguousarray(mine).reshape(-1),
                            [full._view(name).reshape(-1), n, displ,
                             MPI.FLOAT if self._dtype == np.float32 else MPI.DOUBLE])
        for name in ("W_in", "b_in", "W_out", "b_out"):
            getattr(full, name)[...] = getattr(self, name)
        return full.data

    def scatter(self, full):
        """Set this rank's part from the whole vector (the inverse of ``gather``); returns self.

        ``full`` is the whole parameter vector, the same on every rank; each
        rank copies its residual layers and the replicated opening layer and
        head out of it (no communication).
        """
        layout = self._layout if self._dist is None else self._dist[1]
        size = max(off + int(np.prod(shape)) for off, shape in layout.values())
        arr = np.asarray(full)
        if arr.ndim != 1 or arr.shape[0] != size or not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"scatter needs the whole float vector of length {size}, "
                             f"got dtype {arr.dtype} shape {arr.shape}")
        if self._dist is None:
            self._data[...] = arr
            return self
        whole = Params(layout, np.ascontiguousarray(arr, dtype=self._dtype))
        a = self._dist[2]
        b = a + self._dist[3]
        for name in ("W_in", "b_in", "W_out", "b_out"):
            getattr(self, name)[...] = getattr(whole, name)
        self.W[...] = whole.W[a:b]
        self.b[...] = whole.b[a:b]
        return self

    def dot(self, other):
        """Inner product of the whole vectors (reduced over ranks with one
        buffer-based Allreduce; the replicated opening layer and head counted
        once). Summed in float64 for float32 parameters too."""
        o = other.data if isinstance(other, Params) else np.asarray(other)
        x = self._data
        if x.dtype != np.float64:
            x, o = x.astype(np.float64), np.asarray(o, dtype=np.float64)
        if self._dist is None:
            return float(x @ o)
        from mpi4py import MPI

        lo = self._layout["W"][0]
        hi = self._layout["W_out"][0]
        local = np.array([x[lo:hi] @ o[lo:hi]])
        total = np.empty(1)
        self._dist[0].Allreduce(local, total, op=MPI.SUM)
        return float(total[0]) + float(x[:lo] @ o[:lo] + x[hi:] @ o[hi:])

    def norm(self):
        """2-norm of the whole vector (over all ranks)."""
        return float(np.sqrt(self.dot(self)))

    def __repr__(self):
        shapes = ", ".join(f"{k}={tuple(self._layout[k][1])}" for k in BLOCKS)
        dt = "" if self._dtype == np.float64 else f", dtype={self._dtype}"
        return f"Params(size={self._size}, {shapes}{dt})"
