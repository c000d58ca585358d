"""The compiled forward, predict and loss against the numpy reference,
and the lp.Params container."""

import numpy as np
import pytest

import layerparallel as lp
import reference as ref
from layerparallel.network import ACTIVATIONS, HEADS, OPENINGS

RTOL = 1e-12


def assert_close(actual, expected, rtol=RTOL):
    """Max-norm relative agreement (elementwise rtol is meaningless near relu's zeros)."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape
    scale = max(np.abs(expected).max(), 1e-300)
    err = np.abs(actual - expected).max()
    assert err <= rtol * scale, f"relative error {err / scale:.3e}"


def small_problem(activation, opening, head, seed, gammas=(0.03, 0.02, 0.05)):
    rng = np.random.default_rng(seed)
    n, n_in, width, n_layers, n_out = 37, 3, 6, 9, 4
    net = lp.ODEResNet(n_in, width, n_layers, n_out, T=3.0, activation=activation,
                       opening=opening, head=head, gamma_tik=gammas[0], gamma_ddt=gammas[1],
                       gamma_out=gammas[2], eta=0.25)
    theta = net.init("uniform", seed=seed, magnitude=0.9)
    X = rng.uniform(-2, 2, size=(n, n_in))
    if head == "classification":
        Y = np.eye(n_out)[rng.integers(0, n_out, size=n)]
    else:
        Y = rng.standard_normal((n, n_out))
    return net, theta, X, Y


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("opening", OPENINGS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_reference(activation, opening, head, seed):
    net, theta, X, Y = small_problem(activation, opening, head, seed)
    uN = net.forward(theta, X)
    assert uN.shape == (X.shape[0], net.width) and uN.dtype == np.float64
    assert_close(uN, ref.forward(net, theta, X))
    assert_close(net.predict(theta, X), ref.predict(net, theta, X))
    J = net.loss(theta, X, Y)
    assert isinstance(J, float)
    assert_close(J, ref.loss(net, theta, X, Y))
    # loss_and_grad returns the same J as the grad-free loss.
    J2, grad = net.loss_and_grad(theta, X, Y)
    assert_close(J2, J)
    assert grad.layout == theta.layout


@pytest.mark.parametrize("which", [0, 1, 2])
@pytest.mark.parametrize("opening", OPENINGS)
def test_each_regularizer_alone(which, opening):
    """One gamma large at a time, so each term dominates J and is checked on its own."""
    gammas = [0.0, 0.0, 0.0]
    gammas[which] = 5.0
    net, theta, X, Y = small_problem("tanh", opening, "regression", 3, tuple(gammas))
    J = net.loss(theta, X, Y)
    reg = ref.regularization(net, theta)
    assert reg > 2 * ref.data_loss(net, theta, X, Y) or (which == 2 and opening == "padding")
    assert_close(J, ref.loss(net, theta, X, Y))


def test_classification_soft_targets_and_large_logits():
    """-sum_j y_j log softmax_j with non one-hot rows and logits far beyond exp's range."""
    net, theta, X, _ = small_problem("relu", "linear", "classification", 4, (0, 0, 0))
    theta.W_out[...] *= 400.0
    theta.b_out[...] = [800.0, -800.0, 0.0, 1.0]
    rng = np.random.default_rng(4)
    Y = rng.uniform(0, 1, size=(X.shape[0], net.n_out))
    J = net.loss(theta, X, Y)
    assert np.isfinite(J)
    assert_close(J, ref.loss(net, theta, X, Y))


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_deep_peaks_box(activation):
    X, Y = lp.datasets.peaks(n=300, seed=1)
    net = lp.ODEResNet(2, 8, 64, 5, T=5.0, activation=activation, gamma_tik=1e-3,
                       gamma_ddt=1e-3, gamma_out=1e-3)
    theta = net.init("box", seed=2, magnitude=1.0)
    assert_close(net.forward(theta, X), ref.forward(net, theta, X))
    assert_close(net.predict(theta, X), ref.predict(net, theta, X))
    assert_close(net.loss(theta, X, Y), ref.loss(net, theta, X, Y))


def test_smoothrelu_reference_pieces():
    """The reference's own activation against the formula's three pieces and C^1 joins."""
    eta = 0.3
    x = np.array([-1.0, -eta, -0.1, 0.0, 0.2, eta, 2.0])
    expected = [0.0, 0.0, 0.04 / 1.2, 0.09 / 1.2, 0.25 / 1.2, eta, 2.0]
    np.testing.assert_allclose(ref.smoothrelu(x, eta), expected, rtol=1e-15, atol=1e-17)


def test_single_sample_and_single_layer():
    net = lp.ODEResNet(1, 1, 1, 1, T=0.5, activation="smoothrelu", head="regression",
                       gamma_tik=0.1, gamma_ddt=0.1, gamma_out=0.1)
    theta = net.init("uniform", seed=5)
    X, Y = np.array([[0.7]]), np.array([[-0.2]])
    assert_close(net.forward(theta, X), ref.forward(net, theta, X))
    assert_close(net.loss(theta, X, Y), ref.loss(net, theta, X, Y))


# ---- lp.Params -----------------------------------------------------------

@pytest.mark.parametrize("opening", OPENINGS)
def test_params_layout_sizes(opening):
    n_in, w, L, K = 3, 6, 9, 4
    net = lp.ODEResNet(n_in, w, L, K, opening=opening)
    p = net.new_params()
    has_open = opening != "padding"
    expected = {"W_in": (w, n_in) if has_open else (0, 0), "b_in": (w if has_open else 0,),
                "W": (L, w, w), "b": (L, w), "W_out": (K, w), "b_out": (K,)}
    for name, shape in expected.items():
        view = getattr(p, name)
        assert view.shape == shape and view.dtype == np.float64
    total = sum(int(np.prod(s)) for s in expected.values())
    assert p.size == net.n_params == p.data.size == total
    # Blocks tile the buffer in order, without gaps or overlaps.
    offsets = sorted((off, int(np.prod(shape))) for off, shape in p.layout.values())
    pos = 0
    for off, size in offsets:
        assert off == pos
        pos += size
    assert pos == total
    assert p.data.flags.c_contiguous and not p.data.any()


@pytest.mark.parametrize("name", ["W_in", "b_in", "W", "b", "W_out", "b_out"])
def test_params_views_share_memory(name):
    net = lp.ODEResNet(3, 6, 9, 4)
    p = net.init("uniform", seed=0)
    view = getattr(p, name)
    assert np.shares_memory(view, p.data)
    off, shape = p.layout[name]
    view[...] = 7.5  # write through a view ...
    assert (p.data[off:off + view.size] == 7.5).all()  # ... and see it in .data
    assert np.count_nonzero(p.data == 7.5) == view.size
    p.data[off] = -1.0  # and the other way round
    assert getattr(p, name).flat[0] == -1.0


def test_params_views_reach_the_core():
    net, theta, X, _ = small_problem("tanh", "activation", "regression", 0)
    before = net.forward(theta, X)
    theta.W[3] += 0.5
    after = net.forward(theta, X)
    assert not np.allclose(before, after)
    assert_close(after, ref.forward(net, theta, X))


def test_params_copy_is_deep():
    net = lp.ODEResNet(3, 6, 9, 4)
    p = net.init("uniform", seed=0)
    q = p.copy()
    assert q.layout == p.layout
    np.testing.assert_array_equal(q.data, p.data)
    assert not np.shares_memory(q.data, p.data)
    q.W[0, 0, 0] = 123.0
    q.b_out[...] = 0.0
    assert p.W[0, 0, 0] != 123.0 and p.b_out.any()
    z = p.zeros_like()
    assert z.layout == p.layout and not z.data.any()
    assert p.gather() is not p.data and np.array_equal(p.gather(), p.data)
    assert p.norm() == pytest.approx(np.linalg.norm(p.data))


@pytest.mark.parametrize("bad", [
    np.zeros(405), np.zeros(407), np.zeros(406, dtype=np.float32), np.zeros(406, dtype=int),
    np.zeros((406, 1)), np.zeros((2, 203)), "abc", None,
])
def test_params_data_setter_rejects(bad):
    net = lp.ODEResNet(3, 6, 9, 4, opening="padding")
    p = net.new_params()
    assert p.size == 406
    with pytest.raises(ValueError):
        p.data = bad
    if isinstance(bad, np.ndarray) and bad.dtype == np.float32 and bad.shape == (406,):
        assert lp.Params(p.layout, bad).dtype == np.float32  # float32 Params take float32 data
    elif bad is not None:  # Params(layout, None) means zeros
        with pytest.raises(ValueError):
            lp.Params(p.layout, bad)
    assert p.data.shape == (406,) and p.data.dtype == np.float64


def test_params_data_setter_accepts_float64():
    net = lp.ODEResNet(3, 6, 9, 4)
    p = net.new_params()
    new = np.arange(p.size, dtype=np.float64)
    p.data = new
    assert p.data[p.layout["b_out"][0]] == p.b_out[0]
    np.testing.assert_array_equal(p.data, new)
    p.data = new[::-1]  # non-contiguous input becomes a contiguous buffer
    assert p.data.flags.c_contiguous and np.shares_memory(p.W, p.data)
