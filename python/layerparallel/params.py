"""lp.Params: all parameters of a network in one flat float64 buffer.

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

    __slots__ = ("_layout", "_size", "_data")

    def __init__(self, layout, data=None):
        self._layout = dict(layout)
        self._size = max(off + int(np.prod(shape)) for off, shape in self._layout.values())
        if data is None:
            self._data = np.zeros(self._size)
        else:
            self.data = data

    @property
    def data(self):
        """The flat float64 buffer that every view shares."""
        return self._data

    @data.setter
    def data(self, value):
        arr = np.asarray(value)
        if arr.dtype != np.float64 or arr.ndim != 1 or arr.shape[0] != self._size:
            raise ValueError(
                f"Params.data must be a 1-d float64 array of length {self._size}, "
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
        return Params(self._layout, self._data.copy())

    def zeros_like(self):
        return Params(self._layout)

    def gather(self):
        """The whole parameter vector (a copy). On one rank that is ``.data``."""
        return self._data.copy()

    def norm(self):
        """2-norm of the whole vector."""
        return float(np.linalg.norm(self._data))

    def __repr__(self):
        shapes = ", ".join(f"{k}={tuple(self._layout[k][1])}" for k in BLOCKS)
        return f"Params(size={self._size}, {shapes})"
