"""Weight initializers: zeros, uniform, He, Glorot and Box.

All draw from ``numpy.random.default_rng(seed)`` in a fixed order, so a seed
gives the same weights on every machine and at every rank count.
"""

import numpy as np

from . import _validation as check

METHODS = ("zeros", "uniform", "he", "glorot", "box")


def _inverse_activation(activation, y, eta):
    """sigma^{-1}(y) for y > 0 (every activation here is increasing there)."""
    if activation == "relu":
        return y
    if activation == "smoothrelu":
        # (x + eta)^2 / (4 eta) = y on the blend, x = y above it.
        return np.where(y >= eta, y, np.sqrt(4.0 * eta * y) - eta)
    if activation == "tanh":
        if np.any(y >= 1.0):
            raise ValueError("box init with tanh needs magnitude / n_layers < 1")
        return np.arctanh(y)
    raise ValueError(f"activation: unknown {activation!r}")


def box_layers(rng, n_layers, width, magnitude, activation="relu", eta=0.1, fan_in=None):
    """Box initialization of the residual layers: returns W (L, w, fan_in), b (L, w).

    For each row i of each layer: a point p uniform in the box [0, m]^w, a
    random unit normal n, and the scale k for which the largest value of
    sigma(k (x - p) . n) over x in the box equals m / N; W_i = k n^T,
    b_i = -k p . n. Every cut plane passes through the box, so the image of
    the box neither collapses nor grows exponentially with depth. ``fan_in``
    (default w) is the length of each row's input, e.g. a conv layer's k k C
    patch.
    """
    m = magnitude
    fan = width if fan_in is None else fan_in
    p = rng.uniform(0.0, m, size=(n_layers, width, fan))
    normal = rng.standard_normal(size=(n_layers, width, fan))
    normal /= np.linalg.norm(normal, axis=2, keepdims=True)
    pn = np.einsum("lij,lij->li", p, normal)
    # max over x in [0, m]^w of (x - p) . n: x_j = m where n_j > 0, else 0.
    t_max = m * np.clip(normal, 0.0, None).sum(axis=2) - pn
    t_max = np.maximum(t_max, np.finfo(float).tiny)
    k = _inverse_activation(activation, np.full_like(t_max, m / n_layers), eta) / t_max
    W = k[:, :, None] * normal
    b = -k * pn
    return W, b


def _fill_dense(rng, method, shape, fan_in, fan_out, magnitude):
    if method == "he":
        return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    if method == "glorot":
        a = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-a, a, size=shape)
    if method == "uniform":
        return rng.uniform(-magnitude, magnitude, size=shape)
    return np.zeros(shape)


def initialize(net, theta, method, seed, magnitude, outer=None):
    """Fill ``theta`` (lp.Params of ``net``) in place; see ODEResNet.init."""
    method = check.choice(method, "method", METHODS)
    if outer is not None:
        outer = check.choice(outer, "outer", METHODS[:-1])
    magnitude = check.finite_float(magnitude, "magnitude", minimum=0.0)
    if method == "box" and magnitude == 0.0:
        raise ValueError("magnitude must be positive for box init")
    rng = np.random.default_rng(check.seed(seed))
    w, L = net.width, net.n_layers
    # Opening layer and head: the same family, with Glorot standing in for Box
    # (the box construction needs inputs in a box [0, m]^w, which data are not).
    if outer is None:
        outer = "glorot" if method == "box" else method
    if net.opening != "padding":
        theta.W_in[...] = _fill_dense(rng, outer, (w, net.n_in), net.n_in, w, magnitude)
        if outer == "uniform":
            theta.b_in[...] = rng.uniform(-magnitude, magnitude, size=w)
    if method == "box":
        theta.W[...], theta.b[...] = box_layers(rng, L, w, magnitude, net.activation, net.eta)
    else:
        theta.W[...] = _fill_dense(rng, method, (L, w, w), w, w, magnitude)
        if method == "uniform":
            theta.b[...] = rng.uniform(-magnitude, magnitude, size=(L, w))
    theta.W_out[...] = _fill_dense(rng, outer, (net.n_out, w), w, net.n_out, magnitude)
    if outer == "uniform":
        theta.b_out[...] = rng.uniform(-magnitude, magnitude, size=net.n_out)
    return theta
