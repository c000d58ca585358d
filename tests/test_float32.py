"""dtype="float32": the same network in single precision, end to end.

References: the float64 network at the same (float32-representable)
parameters, finite differences computed in float64, float32 serial
propagation for MGRIT, and the float32 run itself (1/2/3 ranks, resume).
"""

import json
import os

import numpy as np
import pytest

import layerparallel as lp
from conftest import finite_difference_grad, mpi_test, mpirun
from layerparallel.cli import main as cli_main

EPS32 = float(np.finfo(np.float32).eps)  # 1.19e-7


def pair(dtype_kw=None, **kw):
    """(float64 net, float32 net) of the same configuration."""
    args = dict(n_in=2, width=6, n_layers=24, n_out=5, T=3.0, activation="tanh")
    args.update(kw)
    return lp.ODEResNet(**args), lp.ODEResNet(**args, dtype="float32")


def widened(net64, theta32):
    """theta32's values (exactly) as the float64 network's Params."""
    return lp.Params(net64.new_params().layout, theta32.data.astype(np.float64))


@pytest.fixture(scope="module")
def data():
    X, Y = lp.datasets.peaks(n=120, seed=4)
    return X, Y


@pytest.mark.parametrize("activation, opening", [("tanh", "activation"),
                                                 ("smoothrelu", "linear"),
                                                 ("relu", "padding")])
def test_forward_and_loss_match_float64(data, activation, opening):
    X, Y = data
    net64, net32 = pair(activation=activation, opening=opening, gamma_tik=1e-3,
                        gamma_ddt=1e-2, gamma_out=1e-3)
    theta32 = net32.init("glorot", seed=1)
    theta64 = widened(net64, theta32)
    U32, U64 = net32.forward(theta32, X), net64.forward(theta64, X)
    assert U32.dtype == np.float32 and U64.dtype == np.float64
    # 24 layers of float32 rounding, each ~eps32 relative, stay below 1e-5
    assert np.linalg.norm(U32 - U64) <= 1e-5 * np.linalg.norm(U64)
    P32, P64 = net32.predict(theta32, X), net64.predict(theta64, X)
    assert P32.dtype == np.float32
    assert np.linalg.norm(P32 - P64) <= 1e-5 * np.linalg.norm(P64)
    J32, J64 = net32.loss(theta32, X, Y), net64.loss(theta64, X, Y)
    assert isinstance(J32, float) and abs(J32 - J64) <= 1e-5 * abs(J64)


@pytest.mark.parametrize("activation, opening, head", [("tanh", "activation", "classification"),
                                                       ("smoothrelu", "linear", "regression")])
def test_every_gradient_block_against_float64_finite_differences(data, activation, opening,
                                                                 head):
    X, Y = data
    X, Y = X[:40], Y[:40]
    if head == "regression":
        Y = Y[:, :2] - 0.5
    net64, net32 = pair(n_layers=9, width=4, n_out=Y.shape[1], activation=activation,
                        opening=opening, head=head, gamma_tik=1e-2, gamma_ddt=1e-2,
                        gamma_out=1e-2)
    theta32 = net32.init("glorot", seed=3)
    J32, g32 = net32.loss_and_grad(theta32, X, Y)
    assert g32.dtype == np.float32
    # Central differences of the float64 loss at the same point: their own
    # error (~1e-9) is far below what float32 can resolve, so the comparison
    # measures the float32 gradient alone. Its entries carry rounding of a
    # few eps32 times the entries they are summed from (batch sums, products
    # of width 4, 9 layers), so each block matches to 1e-4 of the largest
    # entry of the whole gradient (blocks of tiny entries would otherwise be
    # held to a relative accuracy no float32 sum has).
    fd = finite_difference_grad(net64, widened(net64, theta32), X, Y)
    scale = np.abs(fd.data).max()
    for name in ("W_in", "b_in", "W", "b", "W_out", "b_out"):
        a, b = getattr(g32, name), getattr(fd, name)
        assert np.abs(a - b).max() <= 1e-4 * scale, name
    # and the float32 gradient is the float64 one rounded, to about eps32
    _, g64 = net64.loss_and_grad(widened(net64, theta32), X, Y)
    assert np.linalg.norm(g32.data - g64.data) <= 1e-5 * np.linalg.norm(g64.data)


@pytest.mark.parametrize("N, cfactor, cycle", [(30, 2, "V"), (37, 4, "F"), (43, 2, "F"),
                                               (50, 4, "V")])
def test_mgrit_converges_to_float32_serial(data, N, cfactor, cycle):
    X, Y = data
    _, net = pair(n_layers=N)
    theta = net.init("glorot", seed=2)
    J0, g0 = net.loss_and_grad(theta, X, Y)
    U0 = net.forward(theta, X)
    # float32 residuals stop near eps32 times the states: rtol 1e-6 of the
    # first residual is reachable, 1e-9 absolute (the float64 default) is not.
    mg = lp.MGRIT(cfactor=cfactor, cycle=cycle, tol=None, rtol=1e-6, max_iter=40,
                  warm_start=False)
    J, g, info = net.loss_and_grad(theta, X, Y, solver=mg)
    U, finfo = net.forward(theta, X, solver=mg)
    assert info["forward"]["converged"] and info["adjoint"]["converged"]
    assert finfo["converged"] and U.dtype == np.float32 and g.dtype == np.float32
    # to float32 rounding: a hundred eps32 relative (solutions of ~40 steps
    # whose iterates carry rounding of a few eps32 each)
    tol = 100 * EPS32
    assert np.linalg.norm(U - U0) <= tol * np.linalg.norm(U0)
    assert abs(J - J0) <= tol * abs(J0)
    assert np.linalg.norm(g.data - g0.data) <= tol * np.linalg.norm(g0.data)


def test_optimizers_keep_float32(data):
    X, Y = data
    _, net = pair(n_layers=8)
    for name in ("gd", "sgd", "adam", "lbfgs"):
        theta = net.init(seed=1)
        opt = lp.optim.create(name)
        lp.train(net, theta, X, Y, opt, iterations=3)
        assert theta.dtype == np.float32 and np.isfinite(theta.data).all()
        state = opt.state_dict()
        for key in getattr(opt, "_vectors", ()):
            if np.asarray(state[key]).size:
                assert np.asarray(state[key]).dtype == np.float32, (name, key)
    # a float64 state loaded into a float32 run is cast to float32 at the next step
    theta = net.init(seed=1)
    opt = lp.optim.Adam()
    opt.load_state_dict({"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                         "iterations": 1, "m": np.zeros(theta.size), "v": np.zeros(theta.size)})
    opt.step(theta, None, net.loss_and_grad(theta, X, Y)[1])
    assert opt.m.dtype == np.float32 and theta.dtype == np.float32


def test_nested_iteration_in_float32(data):
    X, Y = data
    _, net = pair(n_layers=16)
    fine_net, theta, history = lp.nested_train(net, X, Y, lp.optim.Adam(lr=1e-2), levels=2,
                                               schedule=(3, 2))
    assert fine_net.dtype == np.float32 and theta.dtype == np.float32
    assert fine_net.n_layers == 16 and np.isfinite(theta.data).all()


@pytest.mark.slow
def test_float32_resume_is_bit_identical(tmp_path, data):
    X, Y = data
    kw = dict(solver=lp.MGRIT(cfactor=2, tol=None, rtol=1e-5), one_shot=1, seed=5,
              batch_size=60)

    def fresh():
        return lp.ODEResNet(2, 6, 16, 5, dtype="float32")

    net = fresh()
    theta_full = net.init("box", seed=0)
    full = lp.train(net, theta_full, X, Y, lp.optim.LBFGS(), iterations=8, **kw)
    d = str(tmp_path / "ck")
    net = fresh()
    theta = net.init("box", seed=0)
    lp.train(net, theta, X, Y, lp.optim.LBFGS(), iterations=4, checkpoint=d,
             checkpoint_every=2, **kw)
    net2 = fresh()
    theta2 = net2.init("zeros")
    resumed = lp.train(net2, theta2, X, Y, lp.optim.LBFGS(), iterations=8, checkpoint=d,
                       resume=True, **kw)
    assert theta2.dtype == np.float32
    np.testing.assert_array_equal(theta2.data, theta_full.data)
    assert resumed["loss"] == full["loss"]
    # the same checkpoint refuses a float64 network, naming both dtypes
    net64 = lp.ODEResNet(2, 6, 16, 5)
    with pytest.raises(lp.CheckpointError, match="float32 run; this network is float64"):
        lp.train(net64, net64.init(), X, Y, lp.optim.LBFGS(), iterations=8, checkpoint=d,
                 resume=True, **kw)


def test_model_file_records_dtype(tmp_path, data):
    X, _ = data
    _, net = pair(n_layers=6)
    theta = net.init(seed=4)
    path = tmp_path / "m.npz"
    lp.save(path, net, theta)
    net2, theta2 = lp.load(path)
    assert net2.dtype == np.float32 and theta2.dtype == np.float32
    np.testing.assert_array_equal(theta2.data, theta.data)
    with np.load(path) as z:
        assert json.loads(str(z["network"]))["config"]["dtype"] == "float32"
    with pytest.raises(ValueError, match="holds a float32 network"):
        lp.load(path, dtype="float64")
    np.testing.assert_array_equal(net2.predict(theta2, X), net.predict(theta, X))


def test_bad_dtypes_are_value_errors(data):
    X, Y = data
    for bad in ("float16", "double32", None, np.int32, 3):
        with pytest.raises(ValueError, match="dtype must be one of 'float64', 'float32'"):
            lp.ODEResNet(2, 4, 4, 5, dtype=bad)
    assert lp.ODEResNet(2, 4, 4, 5, dtype=np.float32).dtype == np.float32
    net64, net32 = pair(n_layers=4)
    with pytest.raises(ValueError, match="Params of dtype float64 for a float32 network"):
        net32.loss(net64.init(), X, Y)
    with pytest.raises(ValueError, match="Params of dtype float32 for a float64 network"):
        net64.loss(net32.init(), X, Y)
    with pytest.raises(ValueError, match="beyond the range of float32"):
        net32.forward(net32.init(), np.full((3, 2), 1e300))
    # plain float64 arrays are converted once (rounded), not refused
    theta = net32.init(seed=1)
    assert net32.loss(theta.data.astype(np.float64), X, Y) == net32.loss(theta, X, Y)
    # an absolute tolerance float32 cannot reach is said, not silently run to max_iter
    with pytest.warns(RuntimeWarning, match="absolute MGRIT tolerance tol=1e-09"):
        net32.forward(theta, X, solver=lp.MGRIT(cfactor=2, max_iter=2))


def test_cli_train_and_evaluate_float32(tmp_path, capsys):
    model = tmp_path / "m.npz"
    assert cli_main(["train", "--width", "4", "--layers", "8", "--samples", "200",
                     "--iterations", "3", "--no-progress", "--threads", "1", "--mgrit",
                     "--cfactor", "2", "--tol", "none", "--rtol", "1e-5",
                     "--dtype", "float32", "--save", str(model)]) == 0
    net, theta = lp.load(model)
    assert net.dtype == np.float32
    assert cli_main(["evaluate", str(model), "--problem", "peaks", "--samples", "200"]) == 0
    assert cli_main(["evaluate", str(model), "--problem", "peaks", "--samples", "200",
                     "--dtype", "float64"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    l32, l64 = (float(line.split("loss ")[1].split(",")[0]) for line in out[-2:])
    assert abs(l32 - l64) <= 1e-5 * abs(l64)
    assert cli_main(["train", "--dtype", "float16"]) != 0
    assert "invalid choice: 'float16'" in capsys.readouterr().err


@mpi_test
@pytest.mark.slow
def test_same_float32_numbers_at_one_two_and_three_ranks(tmp_path):
    runs = {}
    for k in (1, 2, 3):
        out = tmp_path / f"k{k}.npz"
        mpirun(k, os.path.join(os.path.dirname(__file__), "mpi", "resnet_ranks.py"), out,
               19, 2, "F", "all", 10, "float32")
        runs[k] = np.load(out)
    ref = runs[1]
    assert ref["g"].dtype == np.float32 and ref["U"].dtype == np.float32
    for k in (2, 3):
        d = runs[k]
        # Serial propagation across ranks runs the same float32 kernels on the
        # same rows; one rank forms the layer gradients inside its serial sweep,
        # several in the model's adjoint steps (another summation order): a
        # few float32 ulps of the largest entry.
        assert abs(d["J_serial"] - ref["J_serial"]) <= 10 * EPS32 * abs(ref["J_serial"])
        np.testing.assert_allclose(d["g_serial"], ref["g_serial"], rtol=0,
                                   atol=10 * EPS32 * np.abs(ref["g_serial"]).max())
        # MGRIT: the same iterations to the same tolerance
        assert abs(d["J"] - ref["J"]) <= 1e-6 * abs(ref["J"])
        assert np.linalg.norm(d["g"] - ref["g"]) <= 1e-5 * np.linalg.norm(ref["g"])
        np.testing.assert_allclose(d["U"], ref["U"], rtol=0, atol=1e-5 * np.abs(ref["U"]).max())
    # and MGRIT agrees with serial to float32 rounding
    assert np.linalg.norm(ref["g"] - ref["g_serial"]) <= 1e-5 * np.linalg.norm(ref["g_serial"])


def test_torch_block_in_float32(data):
    torch = pytest.importorskip("torch")
    from layerparallel.torch import ODEResNetBlock

    X, _ = data
    net64, net32 = pair(n_layers=8)
    theta32 = net32.init("glorot", seed=6)
    b32 = ODEResNetBlock(net32, theta=theta32)
    b64 = ODEResNetBlock(net64, theta=widened(net64, theta32))
    assert b32.W.dtype == torch.float32
    y32 = torch.tensor(X[:30], dtype=torch.float32, requires_grad=True)
    y64 = torch.tensor(X[:30], dtype=torch.float64, requires_grad=True)
    u32, u64 = b32(y32), b64(y64)
    assert u32.dtype == torch.float32
    (u32 ** 2).sum().backward()
    (u64 ** 2).sum().backward()
    assert b32.W.grad.dtype == torch.float32 and y32.grad.dtype == torch.float32
    for a, b in ((u32, u64), (b32.W.grad, b64.W.grad), (b32.W_in.grad, b64.W_in.grad),
                 (y32.grad, y64.grad)):
        a, b = a.detach().double(), b.detach()
        assert torch.linalg.norm(a - b) <= 1e-5 * torch.linalg.norm(b)
