"""One subdomain of the parameter decomposition: layers [a, b) with the rest frozen.

The subdomain's own layers run as a small serial ODE-ResNet (the compiled
sweeps, nothing else of the network): its input is the state u_a of the last
global forward solve (the data X for the first subdomain, which also owns the
opening layer), its output u_b goes into a model of everything downstream:

    first-order model  lambda_b^T (u_b - u_b^0) + mu/(2 n) sum_k ||u_b,k - u_b,k^0||^2

built from the adjoint lambda_b of the last global adjoint solve (mu =
``proximal``), or the real head and loss for the last subdomain (which owns
the head). The model is realized by a regression head with W_out = sqrt(mu) I,
b_out = 0 (frozen) and targets sqrt(mu) u_b^0 - n lambda_b / sqrt(mu): its
gradient in u_b is exactly lambda_b at u_b^0. Terms that couple the subdomain
to frozen neighbours without passing through the states (the time-derivative
regularization across a subdomain edge) enter by a linear correction tau, so
that the local objective

    f(p) = L(p) + tau^T (p - p^0),   tau = dJ/dp (global) - dL/dp at p^0

has exactly the global gradient at the start: a local step is a step on J.
"""

import math

import numpy as np

from ..network import ODEResNet


class Subdomain:
    """Layers [a, b) of ``net`` (global indices, all held on this rank)."""

    def __init__(self, net, a, b, first, last, proximal):
        N = net.n_layers
        n = b - a
        self.a, self.b, self.first, self.last = a, b, first, last
        self.proximal = proximal
        self.local = ODEResNet(
            n_in=net.n_in if first else net.width, width=net.width, n_layers=n,
            n_out=net.n_out if last else net.width, T=net.T if n == N else net.T * n / N,
            activation=net.activation, opening=net.opening if first else "padding",
            head=net.head if last else "regression", gamma_tik=net.gamma_tik,
            gamma_ddt=net.gamma_ddt, gamma_out=net.gamma_out, eta=net.eta)
        self.offset = a - net.first_layer  # position of layer a in this rank's theta
        layout = self.local.new_params().layout
        # Trainable: everything but a frozen model head (which comes last in the layout).
        self.size = layout["W_out"][0] if not last else self.local.n_params

    # ---- parameters: this subdomain's part of theta <-> the local net's vector
    def extract(self, theta):
        """The local net's parameters from this rank's theta."""
        p = self.local.new_params()
        if self.first:
            p.W_in[...] = theta.W_in
            p.b_in[...] = theta.b_in
        n = self.b - self.a
        p.W[...] = theta.W[self.offset:self.offset + n]
        p.b[...] = theta.b[self.offset:self.offset + n]
        if self.last:
            p.W_out[...] = theta.W_out
            p.b_out[...] = theta.b_out
        else:
            p.W_out[...] = math.sqrt(self.proximal) * np.eye(self.local.width)
        return p

    def insert(self, p, out):
        """Write the trainable part of local parameters p into ``out`` (theta's layout)."""
        n = self.b - self.a
        if self.first:
            out.W_in[...] = p.W_in
            out.b_in[...] = p.b_in
        out.W[self.offset:self.offset + n] = p.W
        out.b[self.offset:self.offset + n] = p.b
        if self.last:
            out.W_out[...] = p.W_out
            out.b_out[...] = p.b_out

    def block_of(self, vec):
        """The trainable local vector of a theta-shaped lp.Params (e.g. the gradient)."""
        return self.extract(vec).data[:self.size].copy()

    # ---- the local problem
    def targets(self, Y, u_b0, lam_b):
        """Y of the local net: the data's for the last subdomain, else the model
        head's targets sqrt(mu) u_b^0 - n lambda_b / sqrt(mu)."""
        if self.last:
            return Y
        mu = self.proximal
        n = lam_b.shape[0]
        return np.ascontiguousarray(math.sqrt(mu) * u_b0 - (n / math.sqrt(mu)) * lam_b)
