import math

import numpy as np
import pytest

from layerparallel import datasets

SEEDED = {
    "peaks": (datasets.peaks, 5, 2, 5),
    "binary_addition": (datasets.binary_addition, 7, 24, 12),
    "sine": (datasets.sine, 9, 1, 1),
    "two_polynomials": (datasets.two_polynomials, 11, 1, 1),
}


def check_array(a, shape):
    assert a.shape == shape
    assert a.dtype == np.float64
    assert a.flags.c_contiguous


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_shapes_dtype_contiguity(name):
    fn, n, in_dim, out_dim = SEEDED[name]
    X, Y = fn(n=n)
    check_array(X, (n, in_dim))
    check_array(Y, (n, out_dim))


@pytest.mark.parametrize("name", sorted(SEEDED))
def test_determinism_in_seed(name):
    fn = SEEDED[name][0]
    X1, Y1 = fn(n=50, seed=3)
    X2, Y2 = fn(n=50, seed=3)
    X3, _ = fn(n=50, seed=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(Y1, Y2)
    assert not np.array_equal(X1, X3)


@pytest.mark.parametrize("name", sorted(SEEDED))
@pytest.mark.parametrize("n", [0, -3, 2.5, True, "10"])
def test_bad_n(name, n):
    with pytest.raises(ValueError, match=r"\bn must be a positive integer"):
        SEEDED[name][0](n=n)


def test_numpy_integer_n_accepted():
    X, _ = datasets.sine(n=np.int64(4))
    assert X.shape == (4, 1)


def test_peaks_function_at_origin():
    expected = 3 * math.exp(-1) - math.exp(-1) / 3
    assert datasets.peaks_function(0.0, 0.0) == pytest.approx(expected, rel=1e-14)


def test_peaks_function_vectorized():
    x = np.array([[0.0, 1.0], [-2.0, 0.5]])
    y = np.array([[0.0, -1.0], [1.5, 2.0]])
    f = datasets.peaks_function(x, y)
    assert f.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert f[i, j] == datasets.peaks_function(x[i, j], y[i, j])


def test_peaks_thresholds_balance_grid():
    t = datasets.peaks_thresholds()
    assert t.shape == (4,)
    assert np.all(np.diff(t) > 0)
    axis = np.linspace(-3, 3, 501)
    gx, gy = np.meshgrid(axis, axis)
    labels = np.digitize(datasets.peaks_function(gx, gy), t)
    fractions = np.bincount(labels.ravel(), minlength=5) / labels.size
    np.testing.assert_allclose(fractions, 0.2, atol=0.005)


def test_peaks_thresholds_returns_copy():
    t = datasets.peaks_thresholds()
    t[:] = 0.0
    assert np.all(np.diff(datasets.peaks_thresholds()) > 0)


def test_peaks_labels():
    X, Y = datasets.peaks(n=20000, seed=1)
    assert X.min() >= -3 and X.max() <= 3
    assert set(np.unique(Y)) == {0.0, 1.0}
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    labels = Y.argmax(axis=1)
    np.testing.assert_array_equal(
        labels,
        np.digitize(datasets.peaks_function(X[:, 0], X[:, 1]), datasets.peaks_thresholds()),
    )
    fractions = np.bincount(labels, minlength=5) / labels.size
    assert np.all((fractions > 0.17) & (fractions < 0.23))


def test_xor():
    X, Y = datasets.xor()
    check_array(X, (4, 2))
    check_array(Y, (4, 1))
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(Y, [[0], [1], [1], [0]])


def decode(bits):
    return (bits.astype(np.int64) << np.arange(bits.shape[1])).sum(axis=1)


@pytest.mark.parametrize("bits", [1, 3, 12, 30])
def test_binary_addition_sums(bits):
    X, Y = datasets.binary_addition(n=400, bits=bits, seed=2)
    check_array(X, (400, 2 * bits))
    check_array(Y, (400, bits))
    assert set(np.unique(np.concatenate([X.ravel(), Y.ravel()]))) <= {0.0, 1.0}
    a, b, s = decode(X[:, :bits]), decode(X[:, bits:]), decode(Y)
    np.testing.assert_array_equal(a + b, s)
    assert np.all(s < 2**bits)


def test_binary_addition_lsb_first():
    X, Y = datasets.binary_addition(n=200, bits=4, seed=0)
    row = X[0]
    a = sum(int(row[i]) << i for i in range(4))
    b = sum(int(row[4 + i]) << i for i in range(4))
    assert [int(v) for v in Y[0]] == [((a + b) >> i) & 1 for i in range(4)]


@pytest.mark.parametrize("bits", [0, 31, -1, 2.0, True])
def test_binary_addition_bad_bits(bits):
    with pytest.raises(ValueError, match=r"\bbits must be an integer in 1\.\.30"):
        datasets.binary_addition(n=5, bits=bits)


def test_sine():
    X, Y = datasets.sine(n=300, seed=5)
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_allclose(Y, np.sin(2 * np.pi * X), rtol=0, atol=1e-15)


def test_two_polynomials_formula_and_jump():
    f = datasets.two_polynomials_function
    x = np.array([0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(f(x), [-1.0, -0.5, -1 + 24 / 16 - 32 / 64, 1.0], atol=1e-15)
    left, right = f(0.5 - 1e-9), f(0.5)
    assert left == pytest.approx(1.0, abs=1e-7)
    assert right == -1.0
    X, Y = datasets.two_polynomials(n=500, seed=6)
    assert X.min() >= 0 and X.max() <= 1
    np.testing.assert_array_equal(Y, f(X))
    assert np.abs(Y).max() <= 1.0 + 1e-12


@pytest.mark.slow
def test_digits():
    pytest.importorskip("sklearn")
    X, Y = datasets.digits(seed=0)
    check_array(X, (1797, 64))
    check_array(Y, (1797, 10))
    assert X.min() == 0.0 and X.max() == 1.0
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    X2, Y2 = datasets.digits(seed=0)
    X3, _ = datasets.digits(seed=1)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(Y, Y2)
    assert not np.array_equal(X, X3)
    # Same multiset of rows as the unshuffled data.
    from sklearn.datasets import load_digits

    raw = load_digits()
    key = lambda A: A[np.lexsort(A.T[::-1])]  # noqa: E731
    np.testing.assert_array_equal(key(X * 16), key(raw.data.astype(np.float64)))


def test_train_validation_split_partition():
    X = np.arange(30, dtype=np.float64).reshape(10, 3)
    Y = np.arange(10, dtype=np.float64).reshape(10, 1) * 100
    Xt, Yt, Xv, Yv = datasets.train_validation_split(X, Y, validation_fraction=0.3, seed=1)
    assert Xt.shape == (7, 3) and Yt.shape == (7, 1)
    assert Xv.shape == (3, 3) and Yv.shape == (3, 1)
    for a in (Xt, Yt, Xv, Yv):
        assert a.flags.c_contiguous
    rows = np.concatenate([Xt, Xv])
    targets = np.concatenate([Yt, Yv])
    assert sorted(rows[:, 0].tolist()) == X[:, 0].tolist()
    # Pairs (x, y) stay together.
    np.testing.assert_array_equal(targets[:, 0], rows[:, 0] / 3 * 100)
    again = datasets.train_validation_split(X, Y, validation_fraction=0.3, seed=1)
    for a, b in zip((Xt, Yt, Xv, Yv), again):
        np.testing.assert_array_equal(a, b)
    other = datasets.train_validation_split(X, Y, validation_fraction=0.3, seed=2)
    assert not np.array_equal(Xv, other[2])


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), True, "0.2"])
def test_train_validation_split_bad_fraction(fraction):
    X, Y = np.zeros((10, 2)), np.zeros((10, 1))
    with pytest.raises(ValueError, match="validation_fraction"):
        datasets.train_validation_split(X, Y, validation_fraction=fraction)


def test_train_validation_split_row_mismatch():
    with pytest.raises(ValueError, match="X and Y"):
        datasets.train_validation_split(np.zeros((10, 2)), np.zeros((9, 1)))


@pytest.mark.parametrize("rows, fraction", [(2, 0.1), (2, 0.9), (1, 0.5)])
def test_train_validation_split_empty_split(rows, fraction):
    X, Y = np.zeros((rows, 2)), np.zeros((rows, 1))
    with pytest.raises(ValueError, match="validation_fraction.*empty"):
        datasets.train_validation_split(X, Y, validation_fraction=fraction)
