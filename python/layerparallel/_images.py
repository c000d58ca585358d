"""Loaders of real data the user has downloaded: MNIST (idx files) and the
Indian Pines hyperspectral scene (.mat files). Nothing is downloaded here; a
missing file is a FileNotFoundError naming the files expected."""

import gzip
import os

import numpy as np

# idx type byte -> numpy dtype (big-endian, as the format stores them)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
INDIAN_PINES_FILES = {False: ("Indian_pines.mat", "indian_pines"),
                      True: ("Indian_pines_corrected.mat", "indian_pines_corrected")}
INDIAN_PINES_GT = ("Indian_pines_gt.mat", "indian_pines_gt")


def read_idx(path):
    """The array stored in an idx file (gzipped or not), with its shape and dtype."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_TYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated idx header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    count = int(np.prod(shape)) if shape else 1
    if len(data) != header + count * dtype.itemsize:
        raise ValueError(f"{path}: idx header says shape {shape} ({count * dtype.itemsize} "
                         f"bytes of data), the file has {len(data) - header}")
    return np.frombuffer(data, dtype, count=count, offset=header).reshape(shape)


def _find(directory, base):
    """The path of ``base`` in directory: as is, gzipped, or with '.idx' (a common renaming)."""
    candidates = [base, base + ".gz", base.replace("-idx", ".idx"),
                  base.replace("-idx", ".idx") + ".gz"]
    for name in candidates:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    return None


def _one_hot(labels, classes):
    out = np.zeros((labels.shape[0], classes))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _limit(n, name, total):
    if n is None:
        return total
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name} must be a positive integer or None, got {n!r}")
    return min(int(n), total)


def mnist(path, n_train=None, n_test=None):
    """MNIST from the four idx files in the folder ``path`` (as downloaded,
    optionally gzipped): ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``.

    Returns ``(X_train, Y_train, X_test, Y_test)``: images (n, 1, 28, 28) as
    intensities / 255 in [0, 1] and one-hot labels (n, 10), float64, in file
    order; ``n_train``/``n_test`` keep only the first so many.
    """
    if not os.path.isdir(path):
        raise FileNotFoundError(f"MNIST folder {path!r} does not exist; it should hold "
                                + ", ".join(MNIST_FILES.values()) + " (optionally .gz)")
    found = {key: _find(path, base) for key, base in MNIST_FILES.items()}
    missing = [MNIST_FILES[k] for k, v in found.items() if v is None]
    if missing:
        raise FileNotFoundError(f"MNIST files missing in {path!r}: {', '.join(missing)} "
                                "(plain or .gz; download them from the MNIST distribution)")
    out = []
    for part, n in (("train", n_train), ("test", n_test)):
        images = read_idx(found[f"{part}_images"])
        labels = read_idx(found[f"{part}_labels"])
        if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
            raise ValueError(f"MNIST {part} files: images {images.shape} and labels "
                             f"{labels.shape} do not match")
        if labels.size and (labels.min() < 0 or labels.max() > 9):
            raise ValueError(f"MNIST {part} labels must be digits 0..9")
        m = _limit(n, f"n_{part}", images.shape[0])
        X = images[:m].astype(np.float64)[:, None, :, :] / 255.0
        out += [np.ascontiguousarray(X), _one_hot(labels[:m].astype(np.intp), 10)]
    return tuple(out)


def _load_mat(path, key):
    try:
        from scipy.io import loadmat
    except ImportError as exc:
        raise ImportError("datasets.indian_pines needs scipy: pip install scipy") from exc
    data = loadmat(path)
    if key in data:
        return np.asarray(data[key])
    arrays = [k for k in data if not k.startswith("__")]
    if len(arrays) == 1:
        return np.asarray(data[arrays[0]])
    raise ValueError(f"{path}: expected the variable {key!r}, found {arrays}")


def indian_pines(path, corrected=False, classes=None, background=False):
    """The Indian Pines scene from the folder ``path``: ``Indian_pines.mat``
    (145 x 145 pixels, 220 bands; ``corrected=True``: ``Indian_pines_corrected.mat``,
    200 bands) and the labels ``Indian_pines_gt.mat``.

    Returns ``(X, Y)``: the labeled pixels' spectra (n, bands), each band
    standardized to mean 0 and standard deviation 1 over those pixels, and
    one-hot labels. By default the 16 land-cover classes (the unlabeled
    background, label 0, is dropped); ``classes`` keeps only the given
    labels (1..16), numbered in the order given; ``background=True`` keeps
    label 0 as one more class (the first).
    """
    image_name, image_key = INDIAN_PINES_FILES[bool(corrected)]
    gt_name, gt_key = INDIAN_PINES_GT
    missing = [n for n in (image_name, gt_name) if not os.path.isfile(os.path.join(path, n))]
    if missing:
        raise FileNotFoundError(f"Indian Pines files missing in {path!r}: {', '.join(missing)}")
    cube = _load_mat(os.path.join(path, image_name), image_key).astype(np.float64)
    gt = _load_mat(os.path.join(path, gt_name), gt_key).astype(np.intp)
    if cube.ndim != 3 or gt.shape != cube.shape[:2]:
        raise ValueError(f"Indian Pines: image {cube.shape} and labels {gt.shape} do not match")
    labels = gt.reshape(-1)
    spectra = cube.reshape(-1, cube.shape[2])
    if classes is None:
        keep = sorted(set(labels[labels > 0].tolist()))
    else:
        keep = [int(c) for c in classes]
        present = set(labels.tolist())
        bad = [c for c in keep if c < 1 or c not in present]
        if bad or len(set(keep)) != len(keep) or not keep:
            raise ValueError(f"classes must be distinct labels present in {gt_name} (1..), "
                             f"got {list(classes)!r}")
    if background:
        keep = [0] + keep
    index = {c: i for i, c in enumerate(keep)}
    mask = np.isin(labels, keep)
    X = spectra[mask]
    std = X.std(axis=0)
    X = (X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)
    y = np.array([index[c] for c in labels[mask]], dtype=np.intp)
    return np.ascontiguousarray(X), _one_hot(y, len(keep))
