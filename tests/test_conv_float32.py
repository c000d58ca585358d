"""Float32 convolutional ODE-ResNets: the same network as float64 to float32
accuracy (serial and MGRIT, every rank count the engine runs on one process),
gradients against float64 finite differences, and the float32 plumbing
(Params, checks, model files)."""

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import cli
from layerparallel.params import BLOCKS

from conftest import finite_difference_grad


def pair(seed=0, n=6, in_shape=(2, 6, 5), channels=3, n_layers=8, **kw):
    """The same conv net and data in float64 and float32 (theta rounded once)."""
    rng = np.random.default_rng(seed)
    net64 = lp.ConvODEResNet(in_shape, channels, n_layers, 3, T=1.5, eta=0.3, **kw)
    net32 = lp.ConvODEResNet(in_shape, channels, n_layers, 3, T=1.5, eta=0.3, dtype="float32",
                             **kw)
    theta64 = net64.init("uniform", seed=seed, magnitude=0.5)
    theta32 = net32.new_params().scatter(theta64.data.astype(np.float32))
    theta64.data[...] = theta32.data  # both at the same (float32-representable) point
    X = rng.uniform(-1, 1, size=(n,) + tuple(in_shape))
    Y = np.eye(3)[rng.integers(0, 3, size=n)]
    return net64, theta64, net32, theta32, X, Y


def rel(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / max(np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("kw", [
    {"activation": "smoothrelu"}, {"activation": "tanh", "opening": "linear"},
    {"activation": "relu", "opening": "padding", "pooling": "flatten", "gamma_tik": 0.1,
     "gamma_ddt": 0.05, "gamma_out": 0.2},
])
def test_float32_equals_float64_to_float_accuracy(kw):
    net64, t64, net32, t32, X, Y = pair(**kw)
    assert net32.dtype == np.float32 and t32.dtype == np.float32
    U32 = net32.forward(t32, X)
    assert U32.dtype == np.float32
    assert rel(U32, net64.forward(t64, X)) <= 1e-5
    J64, g64 = net64.loss_and_grad(t64, X, Y)
    J32, g32 = net32.loss_and_grad(t32, X, Y)
    assert g32.dtype == np.float32 and isinstance(J32, float)
    assert abs(J32 - J64) <= 1e-5 * abs(J64)
    for name in BLOCKS:
        a, b = getattr(g32, name), getattr(g64, name)
        if b.size:
            assert rel(a, b) <= 1e-4, name
    assert rel(net32.predict(t32, X), net64.predict(t64, X)) <= 1e-5


def test_float32_gradient_against_float64_finite_differences():
    # Finite differences need float64 (float32 differences of a loss near 1
    # keep 2-3 digits); the float32 gradient must match them to float32 accuracy.
    net64, t64, net32, t32, X, Y = pair(seed=3, n=4, in_shape=(2, 4, 3), n_layers=4,
                                        activation="tanh", gamma_tik=0.3, gamma_ddt=0.05,
                                        gamma_out=0.2)
    fd = finite_difference_grad(net64, t64, X, Y)
    _, g32 = net32.loss_and_grad(t32, X, Y)
    for name in BLOCKS:
        a, b = getattr(g32, name), getattr(fd, name)
        if b.size:
            assert rel(a, b) <= 2e-4, name
            assert np.linalg.norm(b) > 1e-8, name


@pytest.mark.parametrize("storage, cf", [("all", 2), ("C", 4)])
def test_float32_mgrit_matches_float32_serial(storage, cf):
    net64, t64, net32, t32, X, Y = pair(seed=1, n_layers=16, gamma_tik=0.01)
    J0, g0 = net32.loss_and_grad(t32, X, Y)
    mg = lp.MGRIT(cfactor=cf, storage=storage, tol=1e-5, max_iter=40, warm_start=False)
    J, g, info = net32.loss_and_grad(t32, X, Y, solver=mg)
    assert info["forward"]["converged"] and info["adjoint"]["converged"]
    assert info["forward"]["iterations"] >= 2
    assert g.dtype == np.float32
    assert abs(J - J0) <= 1e-5 * abs(J0)
    assert rel(g.data, g0.data.astype(np.float64)) <= 1e-4
    U, _ = net32.forward(t32, X, solver=mg)
    assert U.dtype == np.float32 and rel(U, net32.forward(t32, X).astype(np.float64)) <= 1e-5


def test_float32_training_and_model_file(tmp_path):
    X, Y = lp.datasets.digits(images=True)
    X, Y = X[:120], Y[:120]
    net = lp.ConvODEResNet((1, 8, 8), 3, 4, 10, T=1.0, activation="relu", pooling="flatten",
                           dtype="float32")
    theta = net.init("he", seed=0)
    J0 = net.loss(theta, X, Y)
    lp.train(net, theta, X, Y, lp.optim.create("adam", lr=0.01), iterations=5)
    assert theta.dtype == np.float32 and net.loss(theta, X, Y) < J0
    lp.save(tmp_path / "m.npz", net, theta)
    net2, theta2 = lp.load(tmp_path / "m.npz")
    assert net2.dtype == np.float32 and repr(net2) == repr(net)
    np.testing.assert_array_equal(net2.predict(theta2, X), net.predict(theta, X))
    with pytest.raises(ValueError, match="dtype"):
        lp.ConvODEResNet((1, 8, 8), 3, 4, 10, dtype="float16")
    with pytest.raises(ValueError, match="dtype"):
        net.loss(lp.ConvODEResNet((1, 8, 8), 3, 4, 10, pooling="flatten").init(), X, Y)


def test_float32_conv_from_the_command_line(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert cli.main(["train", "--problem", "digits-images", "--model", "conv", "--dtype",
                     "float32", "--channels", "2", "--layers", "3", "--samples", "100",
                     "--iterations", "2", "--optimizer", "adam", "--no-progress", "--threads",
                     "1", "--save", str(model)]) == 0
    capsys.readouterr()
    net, theta = lp.load(model)
    assert type(net) is lp.ConvODEResNet and net.dtype == np.float32
    assert theta.dtype == np.float32
