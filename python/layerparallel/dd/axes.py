"""The two axes a decomposition method sees: the layer ranks of one network
copy, and the data groups that split each batch (lp.ProcessGrid)."""

import copy

import numpy as np

from ..grid import DataParallelNet, share
from ..network import ODEResNet
from ..optim import Optimizer, create


class Axes:
    """``inner``: the network on the layer ranks; ``data_comm`` (None: one
    group), ``groups`` and ``group`` (this one's index)."""

    def __init__(self, net):
        if isinstance(net, DataParallelNet):
            self.inner, self.data_comm = net.inner, net.data_comm
            self.groups, self.group = net.grid.data, net.grid.data_rank
        elif isinstance(net, ODEResNet):
            self.inner, self.data_comm, self.groups, self.group = net, None, 1, 0
        else:
            raise ValueError(f"net must be an lp.ODEResNet (or grid.network(...)), got {net!r}")

    def part(self, n, parts, index):
        """Rows of part ``index`` of ``parts`` equal parts of n rows, and its weight."""
        rows = share(n, parts, index)
        return rows, (rows.stop - rows.start) / n

    def sum(self, values):
        """Sum of a float64 vector over the data groups (a new array)."""
        values = np.array(values, dtype=np.float64)
        if self.data_comm is not None:
            from mpi4py import MPI

            self.data_comm.Allreduce(MPI.IN_PLACE, values, op=MPI.SUM)
        return values


def optimizer_template(value, name):
    """An lp.optim optimizer from a name or an instance (a private copy)."""
    if isinstance(value, Optimizer):
        return copy.deepcopy(value)
    if isinstance(value, str):
        return create(value)
    raise ValueError(f"{name} must be an lp.optim optimizer or a name (gd, sgd, adam, lbfgs), "
                     f"got {value!r}")
