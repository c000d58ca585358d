"""Model files (lp.save / lp.load), Params.scatter, and the commands that use
them: train --save, evaluate, predict; save on 2 ranks, load on 1 and 3."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import layerparallel as lp
from layerparallel import cli

HERE = os.path.dirname(__file__)
MPIEXEC = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))


def small_net(**kw):
    net = lp.ODEResNet(2, 4, 6, 3, T=2.0, activation="tanh", opening="linear", gamma_tik=1e-3,
                       gamma_ddt=2e-3, eta=0.2, **kw)
    return net, net.init("box", seed=7)


def test_save_load_round_trip(tmp_path):
    net, theta = small_net()
    path = tmp_path / "m.npz"
    lp.save(path, net, theta)
    net2, theta2 = lp.load(path)
    for k in ("n_in", "width", "n_layers", "n_out", "T", "activation", "opening", "head",
              "gamma_tik", "gamma_ddt", "gamma_out", "eta"):
        assert getattr(net2, k) == getattr(net, k), k
    np.testing.assert_array_equal(theta2.data, theta.data)
    with np.load(path, allow_pickle=False) as z:  # plain arrays, no pickle
        assert set(z.files) == {"format", "network", "theta", "version"}
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


def test_save_respects_the_umask(tmp_path):
    net, theta = small_net()
    old = os.umask(0o027)
    try:
        lp.save(tmp_path / "m.npz", net, theta)
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "m.npz").st_mode & 0o777 == 0o640


def test_load_refuses_bad_files(tmp_path):
    net, theta = small_net()
    with pytest.raises(ValueError, match="does not exist"):
        lp.load(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="unreadable"):
        lp.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(ValueError, match="lacks 'format'"):
        lp.load(tmp_path / "other.npz")
    lp.save(tmp_path / "m.npz", net, theta)
    good = dict(np.load(tmp_path / "m.npz"))

    def variant(name, **change):
        np.savez(tmp_path / name, **dict(good, **change))
        return tmp_path / name

    with pytest.raises(ValueError, match="format"):
        lp.load(variant("f.npz", format=np.array(99)))
    with pytest.raises(ValueError, match="entries"):
        lp.load(variant("short.npz", theta=good["theta"][:-1]))
    with pytest.raises(ValueError, match="NaN"):
        lp.load(variant("nan.npz", theta=np.full_like(good["theta"], np.nan)))
    with pytest.raises(ValueError, match="network description"):
        lp.load(variant("json.npz", network=np.array("{not json")))
    with pytest.raises(ValueError, match="width"):
        lp.load(variant("cfg.npz", network=np.array(str(good["network"]).replace(
            '"width": 4', '"width": -4'))))
    with pytest.raises(ValueError, match="cannot write"):
        lp.save(tmp_path / "no" / "dir" / "m.npz", net, theta)


def test_scatter_is_the_inverse_of_gather():
    net, theta = small_net()
    p = net.new_params().scatter(theta.data)
    np.testing.assert_array_equal(p.data, theta.data)
    np.testing.assert_array_equal(p.gather(), theta.gather())
    with pytest.raises(ValueError, match="length"):
        net.new_params().scatter(theta.data[:-1])
    with pytest.raises(ValueError, match="float"):
        net.new_params().scatter(np.zeros(theta.size, dtype=np.int64))


def test_train_save_evaluate_predict(tmp_path, capsys):
    model = tmp_path / "model.npz"
    small = ["--width", "4", "--layers", "8", "--samples", "200", "--no-progress",
             "--threads", "1"]
    assert cli.main(["train", *small, "--iterations", "10", "--save", str(model)]) == 0
    out = capsys.readouterr().out
    final = [line for line in out.splitlines() if line.startswith("final:")][0]
    val_acc = float(final.split("validation accuracy ")[1].split(",")[0])

    assert cli.main(["evaluate", str(model), "--problem", "peaks", "--samples", "200"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("peaks (validation, 40 samples)")
    assert float(line.split("accuracy ")[1]) == pytest.approx(val_acc, abs=5e-5)

    X = lp.datasets.peaks(n=7, seed=9)[0]
    np.save(tmp_path / "X.npy", X)
    net, theta = lp.load(model)
    for what, expected in [("output", net.predict(theta, X)), ("states", net.forward(theta, X)),
                           ("labels", np.argmax(net.predict(theta, X), axis=1))]:
        out = tmp_path / f"{what}.npy"
        assert cli.main(["predict", str(model), "--input", str(tmp_path / "X.npy"),
                         "--output", str(out), "--what", what]) == 0
        np.testing.assert_array_equal(np.load(out), expected)
    probs = np.load(tmp_path / "output.npy")
    out = tmp_path / "p.npy"
    cli.main(["predict", str(model), "--input", str(tmp_path / "X.npy"), "--output", str(out),
              "--what", "probabilities"])
    np.testing.assert_allclose(np.load(out).sum(axis=1), 1.0)
    assert np.all(np.argmax(np.load(out), axis=1) == np.argmax(probs, axis=1))
    capsys.readouterr()

    # user errors: one line, status 2
    np.save(tmp_path / "bad.npy", np.zeros((3, 5)))
    for argv, message in [
        (["evaluate", str(model), "--problem", "sine"], "does not fit the model"),
        (["evaluate", str(tmp_path / "none.npz"), "--problem", "peaks"], "does not exist"),
        (["predict", str(model), "--input", str(tmp_path / "bad.npy"), "--output",
          str(tmp_path / "o.npy")], "2 columns"),
        (["predict", str(model), "--input", str(tmp_path / "none.npy"), "--output",
          str(tmp_path / "o.npy")], "does not exist"),
        (["train", *small, "--save", str(tmp_path / "no" / "m.npz")], "no writable directory"),
    ]:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("layerparallel: error:") and message in err, err


def test_conv_round_trip(tmp_path):
    net = lp.ConvODEResNet((2, 5, 4), 3, 5, 4, T=2.0, kernel_size=3, activation="tanh",
                           opening="linear", pooling="flatten", gamma_tik=1e-3, gamma_ddt=2e-3,
                           gamma_out=1e-4, eta=0.2)
    theta = net.init("he", seed=3)
    lp.save(tmp_path / "c.npz", net, theta)
    net2, theta2 = lp.load(tmp_path / "c.npz")
    assert type(net2) is lp.ConvODEResNet and repr(net2) == repr(net)
    for k in ("in_shape", "channels", "kernel_size", "pooling", "gamma_tik", "gamma_ddt",
              "gamma_out", "eta"):
        assert getattr(net2, k) == getattr(net, k), k
    np.testing.assert_array_equal(theta2.data, theta.data)
    X = np.random.default_rng(0).uniform(size=(6, 2, 5, 4))
    np.testing.assert_array_equal(net2.predict(theta2, X), net.predict(theta, X))
    good = dict(np.load(tmp_path / "c.npz"))
    np.savez(tmp_path / "even.npz", **dict(good, network=np.array(str(good["network"]).replace(
        '"kernel_size": 3', '"kernel_size": 2'))))
    with pytest.raises(ValueError, match="odd"):
        lp.load(tmp_path / "even.npz")


def test_conv_train_save_evaluate_predict(tmp_path, capsys):
    model = tmp_path / "conv.npz"
    assert cli.main(["train", "--problem", "digits-images", "--model", "conv", "--channels", "2",
                     "--layers", "3", "--samples", "120", "--iterations", "3", "--optimizer",
                     "adam", "--no-progress", "--threads", "1", "--save", str(model)]) == 0
    capsys.readouterr()
    net, theta = lp.load(model)
    assert type(net) is lp.ConvODEResNet and net.in_shape == (1, 8, 8)
    assert cli.main(["evaluate", str(model), "--problem", "digits-images", "--samples", "120"]) == 0
    line = capsys.readouterr().out.strip()
    p = lp.datasets.problem("digits-images", samples=120, seed=0, validation_fraction=0.2)
    assert line.startswith("digits-images (validation, 24 samples)")
    assert float(line.split("accuracy ")[1]) == pytest.approx(
        net.accuracy(theta, p.X_val, p.Y_val), abs=5e-5)
    X = p.X_val[:5]
    for name, arr in (("img.npy", X), ("rows.npy", X.reshape(5, -1))):  # images or rows
        np.save(tmp_path / name, arr)
        for what, expected in [("output", net.predict(theta, X)),
                               ("states", net.forward(theta, X))]:
            out = tmp_path / f"{what}.npy"
            assert cli.main(["predict", str(model), "--input", str(tmp_path / name),
                             "--output", str(out), "--what", what]) == 0
            np.testing.assert_array_equal(np.load(out), expected)
    capsys.readouterr()
    np.save(tmp_path / "bad.npy", np.zeros((3, 2, 8, 4)))  # 64 values, wrong image shape
    np.save(tmp_path / "bad2.npy", np.zeros((3, 63)))
    for argv, message in [
        (["evaluate", str(model), "--problem", "peaks"], "does not fit the model"),
        (["predict", str(model), "--input", str(tmp_path / "bad.npy"), "--output",
          str(tmp_path / "o.npy")], "images of shape (1, 8, 8)"),
        (["predict", str(model), "--input", str(tmp_path / "bad2.npy"), "--output",
          str(tmp_path / "o.npy")], "64 columns"),
    ]:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("layerparallel: error:") and message in err, err


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.skipif(not (MPIEXEC and lp._core.mpi_available), reason="needs mpiexec and MPI")
def test_saved_on_two_ranks_loads_on_one_and_three(tmp_path):
    pytest.importorskip("torch")

    def mpirun(k, *args):
        cmd = [MPIEXEC, "-n", str(k), sys.executable, "-m", "mpi4py",
               os.path.join(HERE, "mpi", "modelfile_ranks.py"), *map(str, args)]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return np.load(args[-1])

    model = tmp_path / "model.npz"
    saved = mpirun(2, "save", model, tmp_path / "saved.npz")
    loaded = {k: mpirun(k, mode, model, tmp_path / f"loaded{k}.npz")
              for k, mode in ((1, "load"), (3, "load_block"))}
    g_net, g_theta = lp.load(str(model) + ".grid.npz")
    ref = lp.ODEResNet(2, 5, 12, 5, T=3.0)
    assert repr(g_net) == repr(ref)
    np.testing.assert_array_equal(g_theta.data, ref.init("glorot", seed=2).data)
    net, theta = lp.load(model)
    X = lp.datasets.peaks(n=120, seed=4)[0]
    conv, conv_theta = lp.load(str(model) + ".conv.npz")
    conv_X = np.random.default_rng(5).uniform(size=(9, 2, 5, 4))  # as the script's images()
    for k, d in loaded.items():
        np.testing.assert_array_equal(d["conv_theta"], saved["conv_theta"])
        np.testing.assert_allclose(d["conv_predictions"], saved["conv_predictions"], rtol=0,
                                   atol=1e-12)
        np.testing.assert_allclose(d["conv_predictions"], conv.predict(conv_theta, conv_X),
                                   rtol=0, atol=1e-12)
        np.testing.assert_array_equal(d["theta"], saved["theta"])
        np.testing.assert_allclose(d["predictions"], saved["predictions"], rtol=0, atol=1e-12)
        np.testing.assert_allclose(d["predictions"], net.predict(theta, X), rtol=0, atol=1e-12)

    # the MGRIT block on 3 ranks against torch autograd on one process
    import torch

    module = lp.torch.to_module(net, theta)
    y = torch.from_numpy(X).requires_grad_(True)
    G = torch.from_numpy(np.random.default_rng(0).standard_normal((X.shape[0], net.width)))
    u = module.states(y)
    (u * G).sum().backward()
    grad = net.new_params()
    grad.W_in[...] = module.opening[0].weight.grad.numpy()
    grad.b_in[...] = module.opening[0].bias.grad.numpy()
    grad.W[...] = module.layers.W.grad.numpy()
    grad.b[...] = module.layers.b.grad.numpy()
    d = loaded[3]
    np.testing.assert_allclose(d["module_predictions"], saved["predictions"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(d["block_u"], u.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(d["block_dX"], y.grad.numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(d["block_grad"], grad.data, rtol=0,
                               atol=1e-10 * np.abs(grad.data).max())
