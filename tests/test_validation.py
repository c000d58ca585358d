"""Bad input raises ValueError naming the argument, never a crash."""

import numpy as np
import pytest

import layerparallel as lp

GOOD = dict(n_in=3, width=6, n_layers=9, n_out=4)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    net = lp.ODEResNet(**GOOD, gamma_tik=0.01)
    theta = net.init("uniform", seed=0)
    X = rng.uniform(-1, 1, size=(7, 3))
    Y = np.eye(4)[rng.integers(0, 4, size=7)]
    return net, theta, X, Y


# ---- constructor ---------------------------------------------------------

@pytest.mark.parametrize("kwargs, name", [
    (dict(width=0), "width"),
    (dict(width=-3), "width"),
    (dict(width=1 << 20), "width"),
    (dict(n_in=0), "n_in"),
    (dict(n_in=True), "n_in"),
    (dict(n_out=0), "n_out"),
    (dict(n_out="4"), "n_out"),
    (dict(n_layers=-1), "n_layers"),
    (dict(n_layers=2.5), "n_layers"),
    (dict(n_layers=9.0), "n_layers"),
    (dict(n_layers=None), "n_layers"),
    (dict(T=0), "T"),
    (dict(T=-1.0), "T"),
    (dict(T=float("nan")), "T"),
    (dict(T=float("inf")), "T"),
    (dict(T="5"), "T"),
    (dict(activation="sigmoid"), "activation"),
    (dict(activation=None), "activation"),
    (dict(activation="ReLU"), "activation"),
    (dict(opening="foo"), "opening"),
    (dict(head="bar"), "head"),
    (dict(gamma_tik=-1), "gamma_tik"),
    (dict(gamma_tik=float("nan")), "gamma_tik"),
    (dict(gamma_ddt=-1e-9), "gamma_ddt"),
    (dict(gamma_ddt=float("inf")), "gamma_ddt"),
    (dict(gamma_out=-0.5), "gamma_out"),
    (dict(gamma_out=[0.1]), "gamma_out"),
    (dict(eta=0), "eta"),
    (dict(eta=-0.1), "eta"),
    (dict(eta=float("nan")), "eta"),
    (dict(opening="padding", n_in=7, width=6), "n_in"),
])
def test_constructor_rejects(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lp.ODEResNet(**{**GOOD, **kwargs})


def test_constructor_accepts_numpy_scalars():
    net = lp.ODEResNet(np.int64(3), np.int32(6), np.uint8(9), 4, T=np.float32(2.0),
                       gamma_tik=np.float64(0.1), opening="padding")
    assert (net.n_in, net.width, net.n_layers, net.T) == (3, 6, 9, 2.0)
    assert lp.ODEResNet(6, 6, 1, 1, opening="padding").n_params == 6 * 6 + 6 + 6 + 1


# ---- X, Y, theta ---------------------------------------------------------

def _nan_params(net, theta):
    p = theta.copy()
    p.W[2, 1, 1] = np.nan
    return p


def _inf_params(net, theta):
    p = theta.copy()
    p.b_out[0] = -np.inf
    return p


BAD_X = [
    lambda X: X[:, :2],                          # wrong number of columns
    lambda X: np.hstack([X, X]),
    lambda X: X[:, 0],                           # 1-d
    lambda X: X[None],                           # 3-d
    lambda X: X[:0],                             # no rows
    lambda X: np.float64(1.0),                   # scalar
    lambda X: np.where(X > 0.5, np.nan, X),      # NaN
    lambda X: np.where(X > 0.5, -np.inf, X),     # Inf
    lambda X: X.astype(str),                     # strings
    lambda X: X.astype(object),                  # object dtype
    lambda X: X + 1j,                            # complex
    lambda X: [[1.0, 2.0, 3.0], [1.0, 2.0]],     # ragged
    lambda X: None,
]

BAD_Y = [
    lambda Y: Y[:, :3],                          # wrong number of columns
    lambda Y: Y[:, 0],                           # 1-d
    lambda Y: Y[:-1],                            # rows != X rows
    lambda Y: np.vstack([Y, Y]),
    lambda Y: np.where(Y > 0, np.nan, Y),        # NaN
    lambda Y: np.where(Y > 0, np.inf, Y),        # Inf
    lambda Y: -Y,                                # negative class targets
    lambda Y: Y.astype(str),
    lambda Y: None,
]

BAD_THETA = [
    lambda net, t: t.data[:-1],                  # wrong length
    lambda net, t: np.append(t.data, 0.0),
    lambda net, t: t.data.reshape(1, -1),        # 2-d
    lambda net, t: np.where(t.data > 0.5, np.nan, t.data),  # NaN ndarray
    lambda net, t: np.where(t.data > 0.5, np.inf, t.data),  # Inf ndarray
    _nan_params,                                 # NaN written into a Params view
    _inf_params,
    lambda net, t: lp.ODEResNet(3, 6, 8, 4).init("uniform"),   # another layout
    lambda net, t: lp.ODEResNet(3, 6, 9, 4, opening="padding").new_params(),
    lambda net, t: t.data.astype(str),
    lambda net, t: None,
]


def _calls(net, theta, X, Y):
    return {
        "forward": lambda t, x, y: net.forward(t, x),
        "predict": lambda t, x, y: net.predict(t, x),
        "loss": lambda t, x, y: net.loss(t, x, y),
        "loss_and_grad": lambda t, x, y: net.loss_and_grad(t, x, y),
        "accuracy": lambda t, x, y: net.accuracy(t, x, y),
    }


@pytest.mark.parametrize("method", ["forward", "predict", "loss", "loss_and_grad", "accuracy"])
@pytest.mark.parametrize("i", range(len(BAD_X)))
def test_bad_X(problem, method, i):
    net, theta, X, Y = problem
    with pytest.raises(ValueError, match=r"^X\b"):
        _calls(net, theta, X, Y)[method](theta, BAD_X[i](X), Y)


@pytest.mark.parametrize("method", ["loss", "loss_and_grad", "accuracy"])
@pytest.mark.parametrize("i", range(len(BAD_Y)))
def test_bad_Y(problem, method, i):
    net, theta, X, Y = problem
    with pytest.raises(ValueError, match=r"^Y\b"):
        _calls(net, theta, X, Y)[method](theta, X, BAD_Y[i](Y))


@pytest.mark.parametrize("method", ["forward", "predict", "loss", "loss_and_grad", "accuracy"])
@pytest.mark.parametrize("i", range(len(BAD_THETA)))
def test_bad_theta(problem, method, i):
    net, theta, X, Y = problem
    with pytest.raises(ValueError, match=r"^theta\b"):
        _calls(net, theta, X, Y)[method](BAD_THETA[i](net, theta), X, Y)


def test_regression_accepts_negative_targets_but_not_accuracy(problem):
    _, _, X, Y = problem
    net = lp.ODEResNet(**GOOD, head="regression")
    theta = net.init("he", seed=1)
    assert np.isfinite(net.loss(theta, X, -Y))
    with pytest.raises(ValueError, match="head"):
        net.accuracy(theta, X, Y)


def test_convertible_inputs_give_the_same_result(problem):
    net, theta, X, Y = problem
    J = net.loss(theta, X, Y)
    U = net.forward(theta, X)
    X32 = X.astype(np.float32)
    J32 = net.loss(theta, X32.astype(np.float64), Y)
    assert net.loss(theta, X32, Y) == J32
    assert net.loss(theta, X.tolist(), Y.tolist()) == J
    assert net.loss(theta, np.asfortranarray(X), Y.astype(np.float32)) == J
    assert net.loss(theta, X, Y.astype(bool)) == J
    assert net.loss(theta, X, Y.astype(int)) == J
    assert net.loss(theta.data.tolist(), X, Y) == J
    assert net.loss(theta.data, X, Y) == J
    assert net.loss(theta.data.astype(">f8"), X.astype(">f8"), Y) == J
    np.testing.assert_array_equal(net.forward(theta, np.asfortranarray(X)), U)
    Xbig = np.zeros((7, 6))
    Xbig[:, ::2] = X
    np.testing.assert_array_equal(net.forward(theta, Xbig[:, ::2]), U)  # strided view
    Xi = np.arange(21).reshape(7, 3) % 3 - 1
    np.testing.assert_array_equal(net.forward(theta, Xi), net.forward(theta, Xi.astype(float)))


def test_inputs_are_not_modified(problem):
    net, theta, X, Y = problem
    X0, Y0, t0 = X.copy(), Y.copy(), theta.data.copy()
    net.loss_and_grad(theta, X, Y)
    net.forward(theta, X)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_array_equal(theta.data, t0)


# ---- init ----------------------------------------------------------------

@pytest.mark.parametrize("args, name", [
    (("foo",), "method"),
    ((None,), "method"),
    (("Box",), "method"),
    (("uniform", 0, -1.0), "magnitude"),
    (("uniform", 0, float("nan")), "magnitude"),
    (("box", 0, 0.0), "magnitude"),
    (("he", 0, "1"), "magnitude"),
])
def test_init_rejects(problem, args, name):
    net = problem[0]
    with pytest.raises(ValueError, match=name):
        net.init(*args)


def test_box_init_tanh_needs_small_magnitude():
    net = lp.ODEResNet(2, 4, 3, 2, activation="tanh")
    with pytest.raises(ValueError, match="magnitude"):
        net.init("box", seed=0, magnitude=3.0)
    assert np.isfinite(net.init("box", seed=0, magnitude=2.0).data).all()


@pytest.mark.parametrize("seed", [-1, "abc", 1.5, None, True])
def test_init_rejects_bad_seed(problem, seed):
    with pytest.raises(ValueError, match="seed"):
        problem[0].init("uniform", seed=seed)


# ---- the private core: refuses, never converts or crashes ------------------

def test_core_refuses_wrong_arrays(problem):
    net, theta, X, Y = problem
    m, t = net._model, theta.data
    np.testing.assert_array_equal(m.forward(t, X), net.forward(theta, X))
    bad_calls = [
        lambda: m.forward(t, X.astype(np.float32)),
        lambda: m.forward(t, np.asfortranarray(X)),
        lambda: m.forward(t, X[:, ::-1]),
        lambda: m.forward(t, X.tolist()),
        lambda: m.forward(t[:-1], X),
        lambda: m.forward(np.append(t, 1.0), X),
        lambda: m.forward(t.astype(np.float32), X),
        lambda: m.forward(t.reshape(1, -1), X),
        lambda: m.forward(t, X[:, :2]),
        lambda: m.forward(t, X[:0]),
        lambda: m.forward(t, X[0]),
        lambda: m.predict(t, X.astype(np.float32)),
        lambda: m.predict(t[1:], X),
        lambda: m.loss_and_grad(t, X, Y[:-1]),
        lambda: m.loss_and_grad(t, X, Y[:, :3]),
        lambda: m.loss_and_grad(t, X, np.asfortranarray(Y)),
        lambda: m.loss_and_grad(t[:-2], X, Y),
        lambda: m.loss_and_grad(t, X.astype(np.float32), Y),
    ]
    for call in bad_calls:
        with pytest.raises((TypeError, ValueError)):
            call()


def test_core_grad_is_written_in_place_or_refused(problem):
    net, theta, X, Y = problem
    m, t = net._model, theta.data
    J, grad = net.loss_and_grad(theta, X, Y)
    g = np.full(t.size, np.nan)
    assert m.loss_and_grad(t, X, Y, g) == J
    np.testing.assert_array_equal(g, grad.data)
    readonly = np.zeros(t.size)
    readonly.flags.writeable = False
    bad_grads = [
        np.zeros(t.size, dtype=np.float32),
        np.zeros(2 * t.size)[::2],                 # non-contiguous
        np.zeros(t.size - 1),
        np.zeros((1, t.size)),
        readonly,
        [0.0] * t.size,
        np.zeros(t.size, dtype=int),
    ]
    for bad in bad_grads:
        with pytest.raises(ValueError, match="grad"):
            m.loss_and_grad(t, X, Y, bad)
    assert m.loss_and_grad(t, X, Y, None) == J
