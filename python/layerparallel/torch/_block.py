"""ODEResNetBlock: the compiled core as a torch module with autograd.

The block maps y (n, n_in) to u_N (n, width): the opening layer and the
residual layers of an lp.ODEResNet; the head is left to the surrounding torch
model. Its parameters are torch tensors over the same memory as an lp.Params,
so torch optimizers update the Params the core reads, and lp code sees what
torch did. A float32 network (``dtype="float32"``) gives float32 parameters;
inputs and incoming gradients of another floating dtype are converted to the
network's dtype for the core, outputs and input gradients back to the input's.
"""

import numpy as np
import torch
from torch import nn

from .. import _collective as collective
from ..mgrit import with_rho
from ..network import ODEResNet


class _Core(torch.autograd.Function):
    """forward: one core propagation (serial sweep or MGRIT solve). backward:
    one adjoint sweep or solve from dL/du_N, reusing the forward's states while
    the core still holds them."""

    @staticmethod
    def forward(ctx, block, y, *params):
        X = y.detach().to(block._torch_dtype).contiguous().numpy()
        uN, tape = block._forward(X)
        ctx.block, ctx.X, ctx.tape = block, X, tape
        ctx.save_for_backward(y, *params)  # torch then refuses in-place changes before backward
        return torch.from_numpy(uN).to(y.dtype)

    @staticmethod
    @torch.autograd.function.once_differentiable  # no second derivatives from the core
    def backward(ctx, grad_uN):
        ctx.saved_tensors  # raises if y or a parameter was modified in place since forward
        lamN = grad_uN.detach().to(ctx.block._torch_dtype).contiguous().numpy()
        want_dX = ctx.needs_input_grad[1]
        grad, dX = ctx.block._backward(ctx.X, lamN, ctx.tape, want_dX)
        dy = torch.from_numpy(dX).to(grad_uN.dtype) if want_dX else None
        return (None, dy) + tuple(torch.from_numpy(getattr(grad, n))
                                  for n in ctx.block._names)


class ODEResNetBlock(nn.Module):
    """y (n, n_in) -> u_N (n, width) through the compiled core, with autograd.

    Parameters
    ----------
    net : lp.ODEResNet
        The network (on several ranks: created with their comm; every rank then
        runs the same torch model on the same data, and holds its own layers).
    solver : lp.MGRIT or None
        None: serial propagation (across the ranks if distributed); an lp.MGRIT:
        forward and adjoint are MGRIT solves to its tolerance (or its fixed
        number of cycles).
    theta : lp.Params or None
        The parameters to share (not copied): torch's ``W_in``, ``b_in``,
        ``W``, ``b`` are views of ``theta``'s buffer. Default: ``net.init()``.

    The head's entries of ``theta`` are not used, and the net's regularization
    is not part of the output (add a penalty or weight decay in torch). The
    forward and backward solves' information is in ``.info`` after each call.
    """

    def __init__(self, net, solver=None, theta=None):
        super().__init__()
        if type(net) is not ODEResNet:  # the conv core has no entry points from dL/du_N
            hint = (" (a ConvODEResNet has no block yet: lp.torch.to_module(net, theta) "
                    "gives the same network as a plain torch module)"
                    if type(net).__name__ == "ConvODEResNet" else "")
            raise ValueError(f"net must be an lp.ODEResNet, got {type(net).__name__}{hint}")
        self.net, self.solver = net, solver
        self._model = net._parallel_model(solver) if solver is not None or net.distributed \
            else None  # also checks that solver fits the net
        self.theta = net.init() if theta is None else theta
        net._theta(self.theta)  # layout and finiteness
        self._names = (("W_in", "b_in") if net.opening != "padding" else ()) + ("W", "b")
        for name in self._names:
            self.register_parameter(name, nn.Parameter(torch.from_numpy(getattr(self.theta, name))))
        self._torch_dtype = torch.float32 if net.dtype == np.float32 else torch.float64
        self.info = None

    def _check_shared(self):
        for name in self._names:
            if getattr(self, name).data_ptr() != getattr(self.theta, name).ctypes.data:
                raise ValueError(f"block parameter {name} no longer shares memory with "
                                 "block.theta (was it replaced?); update it in place instead")

    def _forward(self, X):
        theta = self.theta.data
        if self._model is None:
            uN, tape = self.net._model.forward_tape(theta, X)
            self.info = None
            return uN, tape
        uN, info, tape = self._model.forward_tape(theta, X, self.net._warm(self.solver))
        self.info = {"forward": with_rho(info)} if self.solver is not None else None
        return uN, tape

    def _backward(self, X, lamN, tape, want_dX):
        grad = self.net.new_params()
        dX = np.zeros(X.shape, dtype=X.dtype) if want_dX else None
        flat_dX = None if dX is None else dX.reshape(-1)
        if self._model is None:
            self.net._model.backward(self.theta.data, X, lamN, tape, grad.data, flat_dX)
        else:
            info = self._model.backward(self.theta.data, X, lamN, tape, grad.data, flat_dX,
                                        self.net._warm(self.solver))
            if self.solver is not None:
                self.info = dict(self.info or {}, adjoint=with_rho(info))
        return grad, dX

    def forward(self, y):
        # Checked on every rank, then agreed: a rank that fails alone must not
        # leave the others waiting in the solve.
        with collective.checks(self.net._agreeing(), "in the torch block") as agreed:
            if not isinstance(y, torch.Tensor):
                raise ValueError(f"block input must be a torch.Tensor, got {type(y).__name__}")
            if y.ndim != 2 or y.shape[1] != self.net.n_in or y.shape[0] == 0:
                raise ValueError(f"block input must have shape (n, {self.net.n_in}), "
                                 f"got {tuple(y.shape)}")
            if not y.is_floating_point():
                raise ValueError(f"block input must be floating point, got {y.dtype}")
            if y.device.type != "cpu":
                raise ValueError("the compiled core runs on the CPU: pass y.cpu()")
            if not bool(torch.isfinite(y).all()):
                raise ValueError("block input contains NaN or Inf")
            self._check_shared()
            agreed.fingerprint = {"rows": int(y.shape[0])}
        return _Core.apply(self, y, *(getattr(self, n) for n in self._names))

    def extra_repr(self):
        return f"{self.net!r}, solver={self.solver!r}"
