"""Deterministic synthetic and small real data sets for training experiments.

Every generator returns a pair ``(X, Y)`` of C-contiguous ``float64`` arrays
with one sample per row. Random generators draw from
``numpy.random.default_rng(seed)`` only, so equal seeds give identical data.
"""

import numbers

import numpy as np

from ._validation import positive_int as _check_positive_int

__all__ = [
    "peaks",
    "peaks_function",
    "peaks_thresholds",
    "xor",
    "binary_addition",
    "sine",
    "two_polynomials",
    "two_polynomials_function",
    "digits",
    "mnist",
    "read_idx",
    "indian_pines",
    "train_validation_split",
    "PROBLEMS",
    "REGRESSION",
    "Problem",
    "problem",
]

PEAKS_CLASSES = 5
_PEAKS_GRID_POINTS = 501
_peaks_thresholds_cache = None


def _as_output(a):
    return np.ascontiguousarray(a, dtype=np.float64)


def _one_hot(labels, classes):
    out = np.zeros((labels.shape[0], classes), dtype=np.float64)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def peaks_function(x, y):
    """MATLAB's ``peaks`` surface, evaluated elementwise (broadcasting)::

        f(x, y) = 3 (1 - x)^2 exp(-x^2 - (y + 1)^2)
                  - 10 (x/5 - x^3 - y^5) exp(-x^2 - y^2)
                  - exp(-(x + 1)^2 - y^2) / 3
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return (
        3.0 * (1.0 - x) ** 2 * np.exp(-(x**2) - (y + 1.0) ** 2)
        - 10.0 * (x / 5.0 - x**3 - y**5) * np.exp(-(x**2) - y**2)
        - np.exp(-((x + 1.0) ** 2) - y**2) / 3.0
    )


def peaks_thresholds():
    """The 4 class cut values of :func:`peaks`, shape ``(4,)``.

    They are the 20/40/60/80 % quantiles (``np.quantile``, linear
    interpolation) of ``peaks_function`` on the 501 x 501 grid
    ``np.linspace(-3, 3, 501)`` x ``np.linspace(-3, 3, 501)``. Computed once
    and cached; a fresh copy is returned on each call.
    """
    global _peaks_thresholds_cache
    if _peaks_thresholds_cache is None:
        axis = np.linspace(-3.0, 3.0, _PEAKS_GRID_POINTS)
        gx, gy = np.meshgrid(axis, axis, indexing="ij")
        levels = np.arange(1, PEAKS_CLASSES) / PEAKS_CLASSES
        _peaks_thresholds_cache = np.quantile(peaks_function(gx, gy), levels)
    return _peaks_thresholds_cache.copy()


def peaks(n=5000, seed=0):
    """Five-class classification of the ``peaks`` surface.

    ``X`` (n, 2) is uniform on [-3, 3]^2. With cut values ``t`` from
    :func:`peaks_thresholds`, a point has class
    ``k = #{i : t[i] <= f(x, y)}`` in 0..4 (``np.digitize``), i.e. class k
    means ``t[k-1] <= f < t[k]`` with ``t[-1] = -inf``, ``t[4] = +inf``.
    The classes are balanced on the grid the cuts come from. ``Y`` (n, 5)
    is the one-hot encoding of the class.
    """
    n = _check_positive_int(n, "n")
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, size=(n, 2))
    labels = np.digitize(peaks_function(X[:, 0], X[:, 1]), peaks_thresholds())
    return _as_output(X), _one_hot(labels, PEAKS_CLASSES)


def xor():
    """The four XOR patterns: ``X`` (4, 2) rows (0,0), (0,1), (1,0), (1,1);
    ``Y`` (4, 1) = x1 XOR x2 = 0, 1, 1, 0."""
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    return _as_output(X), _as_output(Y)


def binary_addition(n=500, bits=12, seed=0):
    """Addition of two ``bits``-bit unsigned integers, bit by bit.

    Draws ``a ~ U{0, ..., 2^bits - 1}`` and then ``b ~ U{0, ..., 2^bits - 1 - a}``,
    so that ``a + b < 2^bits``: the sum fits in ``bits`` bits and there is no
    carry out (pairs are therefore not uniform over all valid (a, b); large
    ``a`` comes with small ``b``).

    ``X`` (n, 2*bits): the bits of ``a`` then the bits of ``b``; ``Y``
    (n, bits): the bits of ``a + b``. Bits are least significant first,
    ``X[:, i] = (a >> i) & 1``, values 0.0 or 1.0.
    """
    n = _check_positive_int(n, "n")
    if (
        isinstance(bits, bool)
        or not isinstance(bits, numbers.Integral)
        or not 1 <= bits <= 30
    ):
        raise ValueError(f"bits must be an integer in 1..30, got {bits!r}")
    bits = int(bits)
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**bits, size=n, dtype=np.int64)
    b = rng.integers(0, 2**bits - a, dtype=np.int64)
    shifts = np.arange(bits, dtype=np.int64)

    def to_bits(v):
        return (v[:, None] >> shifts) & 1

    X = np.concatenate([to_bits(a), to_bits(b)], axis=1)
    return _as_output(X), _as_output(to_bits(a + b))


def sine(n=1000, seed=0):
    """Regression of one sine period: ``X`` (n, 1) uniform on [0, 1],
    ``Y = sin(2 pi X)``."""
    n = _check_positive_int(n, "n")
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n, 1))
    return _as_output(X), _as_output(np.sin(2.0 * np.pi * X))


def two_polynomials_function(x):
    """Piecewise polynomial with a jump of -2 at x = 0.5, elementwise::

        f(x) = 8 x^2 - 1                    for x < 0.5
        f(x) = -1 + 24 t^2 - 32 t^3,        t = x - 0.5,  for x >= 0.5

    On [0, 1] both pieces increase from -1 to 1; f(0.5^-) = 1, f(0.5) = -1.
    """
    x = np.asarray(x, dtype=np.float64)
    t = x - 0.5
    return np.where(x < 0.5, 8.0 * x**2 - 1.0, -1.0 + 24.0 * t**2 - 32.0 * t**3)


def two_polynomials(n=1000, seed=0):
    """Regression of a discontinuous target: ``X`` (n, 1) uniform on [0, 1],
    ``Y = two_polynomials_function(X)`` (see there for the formula)."""
    n = _check_positive_int(n, "n")
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 1.0, size=(n, 1))
    return _as_output(X), _as_output(two_polynomials_function(X))


def digits(seed=0, images=False):
    """scikit-learn's 8 x 8 handwritten digits (1797 images, bundled with
    scikit-learn, no download).

    ``X`` (1797, 64) = pixel intensities / 16, in [0, 1] (with ``images=True``
    the same values as (1797, 1, 8, 8) images); ``Y`` (1797, 10) one-hot
    digit labels. Rows are shuffled by ``default_rng(seed).permutation``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "datasets.digits needs scikit-learn: pip install scikit-learn "
            "(or install the extra: pip install 'layerparallel[data]')"
        ) from exc
    data = load_digits()
    order = np.random.default_rng(seed).permutation(data.target.shape[0])
    X = data.data[order] / 16.0
    if images:
        X = X.reshape(-1, 1, 8, 8)
    return _as_output(X), _one_hot(data.target[order].astype(np.intp), 10)


from ._images import indian_pines, mnist, read_idx  # noqa: E402  (loaders of user files)


def train_validation_split(X, Y, validation_fraction=0.2, seed=0):
    """Split rows into training and validation sets by a seeded permutation.

    With ``N`` rows and ``p = default_rng(seed).permutation(N)``, the
    validation set is rows ``p[:m]`` and the training set rows ``p[m:]``,
    where ``m = round(validation_fraction * N)`` (Python ``round``, half to
    even). Returns ``(X_train, Y_train, X_val, Y_val)`` as C-contiguous
    copies (dtypes are kept).
    """
    X = np.asarray(X)
    Y = np.asarray(Y)
    if (
        isinstance(validation_fraction, bool)
        or not isinstance(validation_fraction, numbers.Real)
        or not 0.0 < validation_fraction < 1.0
    ):
        raise ValueError(
            f"validation_fraction must be in the open interval (0, 1), "
            f"got {validation_fraction!r}"
        )
    if X.ndim == 0 or Y.ndim == 0:
        raise ValueError("X and Y must be arrays with one sample per row")
    if X.shape[0] != Y.shape[0]:
        raise ValueError(
            f"X and Y must have the same number of rows, "
            f"got {X.shape[0]} and {Y.shape[0]}"
        )
    rows = X.shape[0]
    m = int(round(validation_fraction * rows))
    if m == 0 or m == rows:
        raise ValueError(
            f"validation_fraction={validation_fraction!r} with {rows} rows "
            f"leaves an empty {'validation' if m == 0 else 'training'} set"
        )
    order = np.random.default_rng(seed).permutation(rows)
    val, train = order[:m], order[m:]
    return (
        np.ascontiguousarray(X[train]),
        np.ascontiguousarray(Y[train]),
        np.ascontiguousarray(X[val]),
        np.ascontiguousarray(Y[val]),
    )


# --------------------------------------------------------------------------- named problems

PROBLEMS = ("peaks", "xor", "sine", "two_polynomials", "digits", "digits-images", "mnist",
            "indian-pines")
REGRESSION = ("sine", "two_polynomials")
IMAGES = ("digits-images", "mnist")  # X as (n, C, H, W)
FILES = ("mnist", "indian-pines")    # read from the user's data_dir


class Problem(tuple):
    """A named training problem: ``X, Y, X_val, Y_val`` (also unpackable in that
    order), ``head`` ("classification" or "regression"), ``name`` and
    ``description`` (one line for logs)."""

    def __new__(cls, X, Y, X_val, Y_val, head, name, description):
        self = super().__new__(cls, (X, Y, X_val, Y_val))
        self.X, self.Y, self.X_val, self.Y_val = X, Y, X_val, Y_val
        self.head, self.name, self.description = head, name, description
        return self

    def __repr__(self):
        return f"Problem({self.description})"


def problem(name, samples=5000, seed=0, validation_fraction=0.2, data_dir=None):
    """A named problem split into training and validation data.

    ``name`` is one of ``PROBLEMS``: ``xor`` (the 4 patterns, one-hot, trained
    and validated on all of them), ``peaks``, ``sine``, ``two_polynomials``
    (``samples`` generated, then split by ``train_validation_split``) or
    ``digits`` (the first ``samples`` of the shuffled images). ``sine`` and
    ``two_polynomials`` have a regression head, the others a classification
    head. ``digits-images`` is ``digits`` as (n, 1, 8, 8) images. From the
    user's files in ``data_dir``: ``mnist`` (the first ``samples`` training
    images, validated on the first ``round(validation_fraction * samples)``
    test images) and ``indian-pines`` (the 16-class labeled pixels, 220
    bands, ``samples`` of them drawn by ``seed``, then split).
    """
    if name not in PROBLEMS:
        raise ValueError(f"unknown problem {name!r}; choose from {', '.join(PROBLEMS)}")
    samples = _check_positive_int(samples, "samples")
    if name in FILES and data_dir is None:
        raise ValueError(f"problem {name!r} reads your downloaded files: give data_dir "
                         "(the folder holding them)")
    if name == "mnist":
        n_val = max(1, int(round(validation_fraction * samples)))
        Xt, Yt, Xv, Yv = mnist(data_dir, n_train=samples, n_test=n_val)
        return Problem(Xt, Yt, Xv, Yv, "classification", name,
                       f"mnist: {Xt.shape[0]} training / {Xv.shape[0]} test images from "
                       f"{data_dir}")
    if name == "xor":
        X, Y = xor()
        Y = np.ascontiguousarray(np.hstack([1.0 - Y, Y]))  # one-hot: classes 0, 1
        return Problem(X, Y, X, Y, "classification", name,
                       "xor: the 4 patterns, trained and validated on all")
    if name in ("digits", "digits-images"):
        X, Y = digits(seed=seed, images=name == "digits-images")
        X, Y = X[:samples], Y[:samples]
    elif name == "indian-pines":
        X, Y = indian_pines(data_dir)
        order = np.random.default_rng(seed).permutation(X.shape[0])[:samples]
        X, Y = X[order], Y[order]
    else:
        X, Y = {"peaks": peaks, "sine": sine, "two_polynomials": two_polynomials}[name](
            n=samples, seed=seed)
    Xt, Yt, Xv, Yv = train_validation_split(X, Y, validation_fraction, seed=seed)
    head = "regression" if name in REGRESSION else "classification"
    return Problem(Xt, Yt, Xv, Yv, head, name,
                   f"{name}: {Xt.shape[0]} training / {Xv.shape[0]} validation samples")
