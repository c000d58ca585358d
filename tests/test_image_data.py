"""Loaders of the user's image and hyperspectral files, on small files the
tests write themselves (idx, gzipped idx, .mat)."""

import gzip
import struct

import numpy as np
import pytest

import layerparallel as lp


def write_idx(path, array, compress=False):
    codes = {np.dtype(np.uint8): 0x08, np.dtype(">f8"): 0x0E}
    header = struct.pack(">BBBB", 0, 0, codes[array.dtype], array.ndim)
    header += struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.tobytes()
    if compress:
        data = gzip.compress(data)
    path.write_bytes(data)


def fake_mnist(folder, n_train=12, n_test=5, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    sets = {}
    for part, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        gz = ".gz" if compress else ""
        write_idx(folder / f"{part}-images-idx3-ubyte{gz}", images, compress)
        write_idx(folder / f"{part}-labels-idx1-ubyte{gz}", labels, compress)
        sets[part] = (images, labels)
    return sets


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, compress):
    sets = fake_mnist(tmp_path, compress=compress)
    Xt, Yt, Xv, Yv = lp.datasets.mnist(str(tmp_path))
    assert Xt.shape == (12, 1, 28, 28) and Xv.shape == (5, 1, 28, 28)
    assert Xt.dtype == np.float64 and Yt.shape == (12, 10)
    np.testing.assert_array_equal(Xt[:, 0], sets["train"][0] / 255.0)
    np.testing.assert_array_equal(Yv.argmax(1), sets["t10k"][1])
    Xt, Yt, Xv, Yv = lp.datasets.mnist(str(tmp_path), n_train=4, n_test=2)
    assert Xt.shape[0] == 4 and Xv.shape[0] == 2


def test_read_idx_round_trip_and_bad_files(tmp_path):
    a = np.arange(24, dtype=">f8").reshape(2, 3, 4)
    write_idx(tmp_path / "a.idx", a)
    np.testing.assert_array_equal(lp.datasets.read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "bad.idx").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="magic"):
        lp.datasets.read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes((tmp_path / "a.idx").read_bytes()[:-8])
    with pytest.raises(ValueError, match="shape"):
        lp.datasets.read_idx(tmp_path / "short.idx")


def test_mnist_names_the_missing_files(tmp_path):
    fake_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        lp.datasets.mnist(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        lp.datasets.mnist(str(tmp_path / "nowhere"))


def fake_indian_pines(folder, bands=220, side=9, seed=0):
    sio = pytest.importorskip("scipy.io")
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, 17, size=(side, side))
    cube = rng.integers(1000, 9000, size=(side, side, bands)).astype(np.uint16)
    name = "Indian_pines.mat" if bands == 220 else "Indian_pines_corrected.mat"
    key = "indian_pines" if bands == 220 else "indian_pines_corrected"
    sio.savemat(folder / name, {key: cube})
    sio.savemat(folder / "Indian_pines_gt.mat", {"indian_pines_gt": gt.astype(np.uint8)})
    return cube, gt


def test_indian_pines_reads_mat_files(tmp_path):
    cube, gt = fake_indian_pines(tmp_path)
    X, Y = lp.datasets.indian_pines(str(tmp_path))
    labeled = gt.reshape(-1) > 0
    assert X.shape == (labeled.sum(), 220)
    assert Y.shape == (labeled.sum(), len(np.unique(gt[gt > 0])))
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-12)
    spectra = cube.reshape(-1, 220)[labeled].astype(float)
    np.testing.assert_allclose(X[:, 5], (spectra[:, 5] - spectra[:, 5].mean())
                               / spectra[:, 5].std())
    X3, Y3 = lp.datasets.indian_pines(str(tmp_path), classes=[4, 2, 11])
    assert Y3.shape[1] == 3 and X3.shape[0] == np.isin(gt, [2, 4, 11]).sum()
    kept = gt.reshape(-1)[np.isin(gt.reshape(-1), [4, 2, 11])]
    np.testing.assert_array_equal(np.array([4, 2, 11])[Y3.argmax(1)], kept)
    Xb, Yb = lp.datasets.indian_pines(str(tmp_path), background=True)
    assert Xb.shape[0] == gt.size and Yb.shape[1] == Y.shape[1] + 1
    with pytest.raises(ValueError, match="classes"):
        lp.datasets.indian_pines(str(tmp_path), classes=[0, 99])


def test_indian_pines_names_the_missing_files(tmp_path):
    fake_indian_pines(tmp_path, bands=200)
    with pytest.raises(FileNotFoundError, match="Indian_pines.mat"):
        lp.datasets.indian_pines(str(tmp_path))
    X, _ = lp.datasets.indian_pines(str(tmp_path), corrected=True)
    assert X.shape[1] == 200


def test_digit_images_and_problems(tmp_path):
    pytest.importorskip("sklearn")
    X, Y = lp.datasets.digits(images=True)
    flat, _ = lp.datasets.digits()
    assert X.shape == (1797, 1, 8, 8)
    np.testing.assert_array_equal(X.reshape(1797, 64), flat)
    p = lp.datasets.problem("digits-images", samples=100)
    assert p.X.shape == (80, 1, 8, 8) and p.X_val.shape == (20, 1, 8, 8)
    fake_mnist(tmp_path, n_train=30, n_test=10)
    p = lp.datasets.problem("mnist", samples=20, data_dir=str(tmp_path))
    assert p.X.shape == (20, 1, 28, 28) and p.X_val.shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="data_dir"):
        lp.datasets.problem("mnist")


def test_indian_pines_problem(tmp_path):
    fake_indian_pines(tmp_path)
    p = lp.datasets.problem("indian-pines", samples=40, data_dir=str(tmp_path))
    assert p.X.shape == (32, 220) and p.X_val.shape == (8, 220) and p.head == "classification"
