"""Plain-numpy reference of the ODE-ResNet (docs/mathematics.md).

Written from the mathematics only (one sample per row, explicit formulas), as
an independent check of the compiled core:

    u_0     = sigma(W_in y + b_in) | W_in y + b_in | [y, 0, ..., 0]
    u_{n+1} = u_n + h sigma(W_n u_n + b_n),        h = T / N
    out     = W_out u_N + b_out
    J       = data loss + regularization

``theta`` is anything with the views W_in, b_in, W, b, W_out, b_out of an
lp.Params; ``cfg`` is anything with the network's hyperparameters as
attributes (an lp.ODEResNet, or a SimpleNamespace).
"""

import numpy as np


def relu(x):
    return np.maximum(x, 0.0)


def smoothrelu(x, eta):
    """0 for x <= -eta, (x + eta)^2 / (4 eta) for |x| < eta, x for x >= eta."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros_like(x)
    mid = np.abs(x) < eta
    out[mid] = (x[mid] + eta) ** 2 / (4.0 * eta)
    hi = x >= eta
    out[hi] = x[hi]
    return out


def activation(name, x, eta=0.1):
    if name == "relu":
        return relu(x)
    if name == "tanh":
        return np.tanh(x)
    if name == "smoothrelu":
        return smoothrelu(x, eta)
    raise ValueError(name)


def opening(cfg, theta, X):
    """u_0 for every row of X, shape (n, width)."""
    X = np.asarray(X, dtype=np.float64)
    if cfg.opening == "padding":
        u0 = np.zeros((X.shape[0], cfg.width))
        u0[:, : X.shape[1]] = X
        return u0
    z = X @ np.asarray(theta.W_in).T + np.asarray(theta.b_in)
    if cfg.opening == "linear":
        return z
    return activation(cfg.activation, z, cfg.eta)


def forward(cfg, theta, X):
    """u_N, shape (n, width), by the explicit Euler recursion."""
    h = cfg.T / cfg.n_layers
    u = opening(cfg, theta, X)
    for W_n, b_n in zip(theta.W, theta.b):
        u = u + h * activation(cfg.activation, u @ W_n.T + b_n, cfg.eta)
    return u


def predict(cfg, theta, X):
    """Head output W_out u_N + b_out, shape (n, n_out)."""
    return forward(cfg, theta, X) @ np.asarray(theta.W_out).T + np.asarray(theta.b_out)


def log_softmax(o):
    """Row-wise log softmax, shifted by the row maximum (no overflow)."""
    m = o.max(axis=1, keepdims=True)
    s = o - m
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def data_loss(cfg, theta, X, Y):
    out = predict(cfg, theta, X)
    Y = np.asarray(Y, dtype=np.float64)
    n = out.shape[0]
    if cfg.head == "classification":
        return float(-(Y * log_softmax(out)).sum() / n)
    return float(((out - Y) ** 2).sum() / (2.0 * n))


def sq(a):
    a = np.asarray(a, dtype=np.float64)
    return float((a * a).sum())


def regularization(cfg, theta):
    h = cfg.T / cfg.n_layers
    W, b = np.asarray(theta.W), np.asarray(theta.b)
    tik = 0.5 * cfg.gamma_tik * h * sum(sq(W[n]) + sq(b[n]) for n in range(cfg.n_layers))
    ddt = 0.5 * cfg.gamma_ddt * h * sum(
        sq((W[n + 1] - W[n]) / h) + sq((b[n + 1] - b[n]) / h) for n in range(cfg.n_layers - 1))
    out = 0.5 * cfg.gamma_out * (sq(theta.W_in) + sq(theta.b_in) + sq(theta.W_out)
                                 + sq(theta.b_out))
    return tik + ddt + out


def loss(cfg, theta, X, Y):
    """J(theta) on (X, Y): data loss plus all three regularizers."""
    return data_loss(cfg, theta, X, Y) + regularization(cfg, theta)
