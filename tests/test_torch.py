"""lp.torch: to_module computes exactly the core's network, the autograd block
gives torch autograd's gradients, and torch's Adam trains it as lp's does."""

import itertools
import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp

torch = pytest.importorskip("torch")

CASES = list(itertools.product(lp.network.ACTIVATIONS, lp.network.OPENINGS, lp.network.HEADS))


def random_net(activation, opening, head, seed, **kw):
    rng = np.random.default_rng(seed)
    net = lp.ODEResNet(3, 5, 7, 4, T=2.0, activation=activation, opening=opening, head=head,
                       gamma_tik=1e-2, gamma_ddt=3e-2, gamma_out=2e-2, eta=0.3, **kw)
    theta = net.init("uniform", seed=seed, magnitude=0.7)
    X = rng.standard_normal((9, 3))
    if head == "classification":
        Y = np.eye(4)[rng.integers(0, 4, 9)]
    else:
        Y = rng.standard_normal((9, 4))
    return net, theta, X, Y


def module_grad(net, module):
    """The gradient of a to_module module in lp.Params layout."""
    g = net.new_params()
    lin = module._opening_linear()
    for name, p in [("W", module.layers.W), ("b", module.layers.b),
                    ("W_out", module.head.weight), ("b_out", module.head.bias)] + (
            [("W_in", lin.weight), ("b_in", lin.bias)] if lin is not None else []):
        getattr(g, name)[...] = p.grad.numpy()
    return g


def close(a, b, rel=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    assert np.abs(a - b).max() <= rel * max(1.0, np.abs(b).max()), np.abs(a - b).max()


@pytest.mark.parametrize("activation, opening, head", CASES)
def test_to_module_equals_the_core(activation, opening, head):
    net, theta, X, Y = random_net(activation, opening, head, seed=len(activation + opening + head))
    module = lp.torch.to_module(net, theta)
    y, c = torch.from_numpy(X), torch.from_numpy(Y)
    close(module(y).detach().numpy(), net.predict(theta, X))
    close(module.states(y).detach().numpy(), net.forward(theta, X))
    J, grad = net.loss_and_grad(theta, X, Y)
    Jt = module.loss(y, c)
    Jt.backward()
    close(Jt.item(), J)
    close(module_grad(net, module).data, grad.data)
    net2, theta2 = lp.torch.from_module(module)
    assert repr(net2) == repr(net) and net2.gamma_ddt == net.gamma_ddt and net2.eta == net.eta
    np.testing.assert_array_equal(theta2.data, theta.data)


@pytest.mark.parametrize("activation", lp.network.ACTIVATIONS)
@pytest.mark.parametrize("opening", lp.network.OPENINGS)
@pytest.mark.parametrize("pooling", ["average", "flatten"])
def test_conv_to_module_equals_the_core(activation, opening, pooling):
    net = lp.ConvODEResNet((2, 5, 4), 3, 4, 3, T=1.0, kernel_size=3, activation=activation,
                           opening=opening, pooling=pooling, gamma_tik=1e-2, gamma_ddt=2e-2,
                           gamma_out=1e-2, eta=0.3)
    theta = net.init("uniform", seed=1, magnitude=0.5)
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 2, 5, 4)), np.eye(3)[rng.integers(0, 3, 6)]
    module = lp.torch.to_module(net, theta)
    assert isinstance(module, lp.torch.ConvODEResNetModule)
    y = torch.from_numpy(X)
    close(module(y).detach().numpy(), net.predict(theta, X))
    J, grad = net.loss_and_grad(theta, X, Y)
    Jt = module.loss(y, torch.from_numpy(Y))
    Jt.backward()
    close(Jt.item(), J)
    close(module_grad(net, module).data, grad.data)
    net2, theta2 = lp.torch.from_module(module)
    assert type(net2) is lp.ConvODEResNet and net2.pooling == pooling
    np.testing.assert_array_equal(theta2.data, theta.data)
    with pytest.raises(ValueError, match="lp.ODEResNet"):
        lp.torch.ODEResNetBlock(net)


def test_to_module_float32_and_smoothrelu_is_c1():
    net, theta, X, _ = random_net("smoothrelu", "activation", "classification", seed=3)
    m32 = lp.torch.to_module(net, theta, dtype=torch.float32)
    assert m32.head.weight.dtype == torch.float32
    out = m32(torch.from_numpy(X).float()).detach().numpy()
    np.testing.assert_allclose(out, net.predict(theta, X), rtol=1e-4, atol=1e-5)
    s = lp.torch.SmoothReLU(eta=0.5)
    x = torch.tensor([-0.5 - 1e-9, -0.5 + 1e-9, 0.5 - 1e-9, 0.5 + 1e-9], dtype=torch.float64,
                     requires_grad=True)
    s(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0, 0, 1, 1], atol=1e-8)


@pytest.mark.parametrize("opening", lp.network.OPENINGS)
@pytest.mark.parametrize("solver", [None, "mgrit", "mgrit_C"])
def test_block_gradients_equal_torch_autograd(opening, solver):
    net, theta, X, _ = random_net("smoothrelu", opening, "classification", seed=5)
    mg = {None: None, "mgrit": lp.MGRIT(cfactor=2, tol=1e-14, max_iter=60),
          "mgrit_C": lp.MGRIT(cfactor=3, tol=1e-14, max_iter=60, storage="C")}[solver]
    block = lp.torch.ODEResNetBlock(net, solver=mg, theta=theta.copy())
    G = torch.from_numpy(np.random.default_rng(2).standard_normal((X.shape[0], net.width)))
    y = torch.from_numpy(X).requires_grad_(True)
    u = block(y)
    (u * G).sum().backward()
    module = lp.torch.to_module(net, theta)
    y2 = torch.from_numpy(X).requires_grad_(True)
    u2 = module.states(y2)
    (u2 * G).sum().backward()
    close(u.detach().numpy(), u2.detach().numpy())
    close(y.grad.numpy(), y2.grad.numpy())
    close(block.W.grad.numpy(), module.layers.W.grad.numpy())
    close(block.b.grad.numpy(), module.layers.b.grad.numpy())
    if opening != "padding":
        lin = module._opening_linear()
        close(block.W_in.grad.numpy(), lin.weight.grad.numpy())
        close(block.b_in.grad.numpy(), lin.bias.grad.numpy())
    else:
        assert [n for n, _ in block.named_parameters()] == ["W", "b"]
    if mg is not None:
        assert block.info["forward"]["iterations"] >= 1 and "adjoint" in block.info


@pytest.mark.parametrize("solver", [None, "mgrit"])
def test_block_backward_after_another_forward_recomputes(solver):
    """The core keeps one forward's states: backward of an older forward must
    propagate again rather than use the newer one's."""
    net, theta, X, _ = random_net("tanh", "linear", "regression", seed=8)
    mg = lp.MGRIT(cfactor=2, tol=1e-14, max_iter=60) if solver else None
    block = lp.torch.ODEResNetBlock(net, solver=mg, theta=theta)
    y1 = torch.from_numpy(X).requires_grad_(True)
    y2 = torch.from_numpy(2.0 * X[:5]).requires_grad_(True)
    loss = block(y1).square().sum() + block(y2).sum()  # forward 1, forward 2, then backward
    loss.backward()
    module = lp.torch.to_module(net, theta)
    z1, z2 = torch.from_numpy(X).requires_grad_(True), torch.from_numpy(2.0 * X[:5]).requires_grad_(True)
    (module.states(z1).square().sum() + module.states(z2).sum()).backward()
    close(y1.grad.numpy(), z1.grad.numpy())
    close(y2.grad.numpy(), z2.grad.numpy())
    close(block.W.grad.numpy(), module.layers.W.grad.numpy())


@pytest.mark.slow  # torch's first optimizer step imports much of torch (seconds)
def test_torch_adam_trains_the_block_as_lp_adam_does():
    """50 steps of torch.optim.Adam on [block, head] give lp.optim.Adam's parameters."""
    X, Y = lp.datasets.peaks(n=200, seed=0)
    net = lp.ODEResNet(2, 6, 16, 5, T=3.0, activation="tanh")
    theta0 = net.init("box", seed=0)

    ours = theta0.copy()
    opt = lp.optim.Adam(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8)
    for _ in range(50):
        _, g = net.loss_and_grad(ours, X, Y)
        opt.step(ours, None, g)

    shared = theta0.copy()
    block = lp.torch.ODEResNetBlock(net, theta=shared)
    head = torch.nn.Linear(6, 5, dtype=torch.float64)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(theta0.W_out))
        head.bias.copy_(torch.from_numpy(theta0.b_out))
    model = torch.nn.Sequential(block, head)
    topt = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    y, c = torch.from_numpy(X), torch.from_numpy(Y)
    for _ in range(50):
        topt.zero_grad()
        loss = -(c * torch.log_softmax(model(y), dim=1)).sum() / y.shape[0]
        loss.backward()
        topt.step()
    shared.W_out[...] = head.weight.detach().numpy()  # the torch head, back in lp's layout
    shared.b_out[...] = head.bias.detach().numpy()
    assert np.abs(ours.data - theta0.data).max() > 0.1  # it did train
    np.testing.assert_allclose(shared.data, ours.data, rtol=0, atol=1e-10)


def test_block_parameters_share_memory_with_params():
    net, theta, X, _ = random_net("relu", "activation", "classification", seed=1)
    block = lp.torch.ODEResNetBlock(net, theta=theta)
    with torch.no_grad():
        block.W[2, 1, 3] = 42.0
        block.b_in.add_(1.0)
    assert theta.W[2, 1, 3] == 42.0
    theta.b[0, 0] = -7.0
    assert block.b[0, 0].item() == -7.0
    out = block(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_array_equal(out, net.forward(theta, X))


def test_block_and_conversion_errors():
    net, theta, X, _ = random_net("relu", "activation", "classification", seed=1)
    block = lp.torch.ODEResNetBlock(net, theta=theta)
    with pytest.raises(ValueError, match="shape"):
        block(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="torch.Tensor"):
        block(X)
    with pytest.raises(ValueError, match="NaN"):
        block(torch.full((2, 3), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="lp.MGRIT"):
        lp.torch.ODEResNetBlock(net, solver="mgrit")
    with pytest.raises(ValueError, match="ODEResNet"):
        lp.torch.ODEResNetBlock(object())
    with pytest.raises(ValueError, match="no block yet.*to_module"):
        lp.torch.ODEResNetBlock(lp.ConvODEResNet((1, 4, 4), 2, 2, 3))
    with pytest.raises(ValueError, match="supports"):
        lp.torch.to_module(object(), theta)
    with pytest.raises(ValueError, match="supports"):
        lp.torch.from_module(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="dtype"):
        lp.torch.to_module(net, theta, dtype=torch.int32)
    y = torch.from_numpy(X).requires_grad_(True)
    (g,) = torch.autograd.grad(block(y).square().sum(), y, create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|differentiable"):
        g.sum().backward()  # second derivatives are not the core's: refused, not wrong
    block.W = torch.nn.Parameter(block.W.detach().clone())  # no longer the Params' memory
    with pytest.raises(ValueError, match="shares memory"):
        block(torch.from_numpy(X))


def test_block_output_follows_the_input_dtype():
    net, theta, X, _ = random_net("tanh", "padding", "regression", seed=2)
    block = lp.torch.ODEResNetBlock(net, theta=theta)
    y = torch.from_numpy(X).float().requires_grad_(True)
    u = block(y)
    assert u.dtype == torch.float32
    u.sum().backward()
    assert y.grad.dtype == torch.float32
    np.testing.assert_allclose(u.detach().numpy(), net.forward(theta, X.astype(np.float32)),
                               rtol=1e-6, atol=1e-6)


@pytest.mark.slow  # a fresh interpreter importing torch
def test_importing_layerparallel_does_not_import_torch():
    code = ("import sys, layerparallel as lp; assert 'torch' not in sys.modules; "
            "lp.torch.to_module; assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
