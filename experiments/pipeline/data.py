r"""Datasets for the experiments: bundled scikit-learn sets, two generators, local image folders, splits.

Every loader returns a :class:`Dataset`: the training arrays ``X`` (n, ...) and ``y`` (n,), the official test
split where the source has one, and ``info`` (source, files read, options used; JSON-ready). Nothing is ever
downloaded: the scikit-learn sets ship with scikit-learn, ``gaussian_mixture`` and ``mnist1d`` are generated,
and the image sets are read from a local folder.

========================  =========  =================================  =======  =============
name                      kind       X (train; test has the same form)  classes  official test
========================  =========  =================================  =======  =============
``digits``                tabular    (1797, 64) float32                 10       no
``wine``                  tabular    (178, 13) float32                  3        no
``breast_cancer``         tabular    (569, 30) float32                  2        no
``iris``                  tabular    (150, 4) float32                   3        no
``gaussian_mixture``      tabular    (n, dim) float32, n = 5000         5        no
``mnist1d``               sequence   (0.8 n, 40) float32, n = 5000      10       yes (0.2 n)
``cifar10``               image      (50000, 3, 32, 32) uint8           10       yes (10000)
``cifar100``              image      (50000, 3, 32, 32) uint8           100/20   yes (10000)
``svhn``                  image      (73257, 3, 32, 32) uint8           10       yes (26032)
``imagenet32``            image      (1281167, 3, 32, 32) uint8         1000     yes (50000)
``imagenet64``            image      (1281167, 3, 64, 64) uint8         1000     yes (50000)
``fashion_mnist``         image      (60000, 1, 28, 28) uint8           10       yes (10000)
``mnist``                 image      (60000, 1, 28, 28) uint8           10       yes (10000)
``kmnist``                image      (60000, 1, 28, 28) uint8           10       yes (10000)
========================  =========  =================================  =======  =============

* ``fashion_mnist``: Zalando's Fashion-MNIST (clothing), IDX files; by default read from the Debian package
  ``dataset-fashion-mnist`` (:data:`FASHION_MNIST_SYSTEM_DIR`).
* ``mnist``: LeCun's handwritten digits, IDX files from a folder of the user's.
* ``kmnist``: Kuzushiji-MNIST (cursive Japanese characters, github.com/rois-codh/kmnist), its IDX files.

Images are NCHW ``uint8`` (0..255; the training layer normalises them), labels are int64 in ``0 .. K-1``.
The image sets are read from ``root`` (or the ``ROBUSTDISTILL_DATA`` environment variable): the folder
holding the files, or a parent whose immediate subfolders hold them (a subfolder is searched when its name,
lower-cased without ``-``/``_``, contains ``cifar10``, ``cifar100``, ``svhn``, ``imagenet32``, ``imagenet64``,
``fashionmnist``, ``kmnist`` or ``mnist``; ``mnist`` skips folders that also name ``fashion``, ``kmnist``,
``emnist`` or ``qmnist``). Missing files raise one :class:`FileNotFoundError` that lists every file expected.
The three MNIST-format sets read the IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each plain or gzipped (``NAME.gz``; the plain file
is used when both exist); ``fashion_mnist`` falls back on :data:`FASHION_MNIST_SYSTEM_DIR` when neither
``root`` nor ``ROBUSTDISTILL_DATA`` is given. A damaged or malformed file of any set (empty, truncated, text,
the wrong structure) raises one :class:`ValueError` naming it, with the reader's own exception as its
``__cause__``; every size a file declares is checked against the bytes it holds before anything is allocated.
CIFAR pickles are read with a restricted unpickler that only builds plain numeric numpy arrays, dtypes and
containers: a crafted file raises :class:`pickle.UnpicklingError` (also a ``ValueError``) instead of running
code. SVHN's MAT-files (level 5, compressed or not) are read by this module, not by scipy.

:func:`make_splits` cuts a dataset into disjoint labeled / validation / unlabeled / test index sets.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import inspect
import io
import json
import math
import numbers
import os
import pickle
import pickletools
import random
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from robustdistill.algorithms.results import to_jsonable
from robustdistill.algorithms.typing import ArrayLike, IntArray, RNGLike
from robustdistill.algorithms.validation import (
    as_numpy,
    check_flag,
    check_int,
    check_labels,
    check_real,
    check_rng,
    describe,
)

__all__ = [
    "DATASETS",
    "DATA_ENV",
    "FASHION_MNIST_SYSTEM_DIR",
    "KINDS",
    "Dataset",
    "Splits",
    "from_arrays",
    "from_torch_dataset",
    "load_dataset",
    "make_splits",
    "read_idx",
]

#: Environment variable naming the data folder when ``root`` is not given.
DATA_ENV = "ROBUSTDISTILL_DATA"

#: Where the Debian package ``dataset-fashion-mnist`` installs Fashion-MNIST's four gzipped IDX files:
#: ``fashion_mnist`` is read from here when neither ``root`` nor ``ROBUSTDISTILL_DATA`` is given.
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"

#: What ``Dataset.kind`` may be: tabular and sequence data are 2-D float32, images 4-D NCHW uint8.
KINDS = ("tabular", "sequence", "image")

_IMAGE_NDIM = 4


# --------------------------------------------------------------------------------------------- Dataset


def _readonly(arr: np.ndarray) -> np.ndarray:
    """A read-only view of ``arr`` (the caller's own array keeps its flags)."""
    view = arr.view()
    view.setflags(write=False)
    return view


def _check_features(X: ArrayLike, kind: str, name: str) -> np.ndarray:
    """Features of one split: (n, d) float32 for tabular/sequence, (n, C, H, W) uint8 for images."""
    arr = as_numpy(X, name)
    if arr.dtype == object or np.iscomplexobj(arr) or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    ndim, layout = (_IMAGE_NDIM, "4-D (n, C, H, W)") if kind == "image" else (2, "2-D (n, d)")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {layout} for kind {kind!r}, got shape {arr.shape}")
    if 0 in arr.shape:
        raise ValueError(f"{name} is empty: got shape {arr.shape}")
    if kind == "image":
        return _as_pixels(arr, name)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = arr.astype(np.float32, copy=False)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)[:5].tolist()
        raise ValueError(f"{name} must be finite (and within float32 range); found NaN or inf in row {rows}")
    return arr


def _as_pixels(arr: np.ndarray, name: str) -> np.ndarray:
    """Integer pixels in 0..255 as uint8 (no copy when already uint8); float images are refused."""
    if arr.dtype == np.uint8:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} (an image set) must hold uint8 pixels 0..255, got dtype {arr.dtype}; convert with "
            "np.clip(np.round(x * 255), 0, 255).astype(np.uint8), or pass 2-D features as tabular data"
        )
    low, high = int(arr.min()), int(arr.max())
    if low < 0 or high > 255:
        raise ValueError(f"{name} pixels must lie in 0..255, found values in [{low}, {high}]")
    return arr.astype(np.uint8)


def _check_split(X: ArrayLike, y: ArrayLike, kind: str, num_classes: int, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """Validated (X, y) of one split: X as in :func:`_check_features`, y int64 (n,) in 0..num_classes-1."""
    xname, yname = f"{prefix}X", f"{prefix}y"
    X = _check_features(X, kind, xname)
    labels = as_numpy(y, yname)
    if labels.ndim != 1 or labels.shape[0] != X.shape[0]:
        raise ValueError(
            f"{yname} must be 1-D with one label per row of {xname} ({X.shape[0]}), got shape {labels.shape}"
        )
    return X, check_labels(labels, X.shape[0], num_classes, yname)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset: training arrays, the official test split if any, and provenance.

    Attributes:
        name: the dataset's name (one of :data:`DATASETS`, or the user's for :func:`from_arrays`).
        X: features, read-only. ``tabular``: (n, d) float32; ``sequence``: (n, L) float32 (mnist1d: L = 40);
            ``image``: (n, C, H, W) uint8, NCHW, pixels 0..255.
        y: labels, (n,) int64 in ``0 .. num_classes-1``, read-only.
        num_classes: K >= 2.
        kind: ``"tabular"``, ``"sequence"`` or ``"image"`` (see :data:`KINDS`).
        test: ``(X_test, y_test)`` of the same form, the source's official test split, or ``None``.
        info: JSON-ready provenance: source, files read, options, subset drawn, seeds.

    Construction validates everything (shapes, dtypes, finiteness, label range) and stores read-only views,
    so a ``Dataset`` is always well formed. Equality is identity (arrays are not compared).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    num_classes: int
    kind: str
    test: tuple[np.ndarray, np.ndarray] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        num_classes = check_int(self.num_classes, "num_classes", low=2)
        X, y = _check_split(self.X, self.y, self.kind, num_classes, "")
        test = self.test
        if test is not None:
            if not isinstance(test, (tuple, list)) or len(test) != 2:
                raise TypeError("test must be a pair (X_test, y_test) or None")
            X_test, y_test = _check_split(test[0], test[1], self.kind, num_classes, "test ")
            if X_test.shape[1:] != X.shape[1:]:
                raise ValueError(f"test X rows have shape {X_test.shape[1:]} but X rows have shape {X.shape[1:]}")
            test = (_readonly(X_test), _readonly(y_test))
        if not isinstance(self.info, dict):
            raise TypeError(f"info must be a dict, got {type(self.info).__name__}")
        info = to_jsonable(self.info)
        try:
            json.dumps(info)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"info must be JSON-serialisable: {exc}") from None
        for attr, value in (
            ("X", _readonly(X)),
            ("y", _readonly(y)),
            ("num_classes", num_classes),
            ("test", test),
            ("info", info),
        ):
            object.__setattr__(self, attr, value)

    def to_dict(self) -> dict[str, Any]:
        """Metadata only (no arrays): name, kind, num_classes, shapes, dtype, sizes and ``info``."""
        return {
            "name": self.name,
            "kind": self.kind,
            "num_classes": self.num_classes,
            "shape": list(self.X.shape),
            "dtype": str(self.X.dtype),
            "size": int(self.X.shape[0]),
            "test_size": None if self.test is None else int(self.test[1].shape[0]),
            "info": self.info,
        }


def _infer_num_classes(*labels: ArrayLike) -> int:
    """K = 1 + the largest integer label among ``labels`` (at least 2 needed)."""
    highs, count = [], 0
    for y in labels:
        arr = np.asarray(y)
        if arr.size and np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
            highs.append(int(arr.max()))
            count += arr.size
    if not highs:
        return 2  # nothing to infer from: the label checks report what is wrong with y
    if max(highs) < 1:
        raise ValueError(f"y holds a single class ({max(highs)}); pass num_classes= (at least 2)")
    if max(highs) >= max(count, 2):
        raise ValueError(
            f"y: the largest label is {max(highs)}, with only {count} labels; labels are 0..K-1: pass "
            "num_classes= when some classes have no example"
        )
    return max(highs) + 1


def from_arrays(
    X: ArrayLike,
    y: ArrayLike,
    *,
    num_classes: int | None = None,
    kind: str | None = None,
    name: str = "arrays",
    test: tuple[ArrayLike, ArrayLike] | None = None,
    source: str = "arrays",
) -> Dataset:
    """The user's own arrays as a validated :class:`Dataset`.

    Args:
        X: (n, d) features (converted to float32, must be finite) or (n, C, H, W) uint8 images (integer
            pixels in 0..255 are converted to uint8; float images are refused with a ``TypeError``).
        y: (n,) integer labels in ``0 .. num_classes-1``.
        num_classes: K; default ``1 + max label`` over ``y`` and the test labels.
        kind: ``"tabular"``, ``"sequence"`` or ``"image"``; default ``"image"`` for 4-D ``X``, else
            ``"tabular"``.
        name: a name for reports.
        test: an optional official test split ``(X_test, y_test)`` of the same form.
        source: where the arrays came from, recorded in ``info``.

    Returns:
        The :class:`Dataset`; ``X`` and ``y`` are read-only views (no copy when the dtype already fits).

    Raises:
        ValueError: wrong shapes, NaN/inf, labels out of range, mismatched lengths, a single class.
        TypeError: non-numeric arrays, float images, a malformed ``test``.
    """
    if kind is None:
        kind = "image" if as_numpy(X, "X").ndim == _IMAGE_NDIM else "tabular"
    if num_classes is None:
        test_labels = [test[1]] if isinstance(test, (tuple, list)) and len(test) == 2 else []
        num_classes = _infer_num_classes(y, *test_labels)
    return Dataset(name=name, X=X, y=y, num_classes=num_classes, kind=kind, test=test, info={"source": source})


def from_torch_dataset(
    dataset: Any,
    *,
    num_classes: int | None = None,
    kind: str | None = None,
    name: str = "torch_dataset",
    test: Any = None,
) -> Dataset:
    """A map-style ``torch.utils.data.Dataset`` of ``(input, label)`` pairs as a :class:`Dataset` (read once,
    item by item, into arrays: the training layer keeps its inputs resident on the device).

    Inputs become numpy arrays stacked along a new first axis: 1-D items give tabular data (``kind="sequence"``
    for a 1-D signal: pass ``kind``), 3-D items ``(C, H, W)`` images. Image items must be ``uint8`` pixels, or floats in
    [0, 1] (what ``torchvision.transforms.ToTensor`` makes of them), which are turned back into ``uint8`` by
    ``round(255 x)``; normalise images in the model, not in the dataset. Labels are ints (Python or 0-d
    tensors). ``test``: an optional second dataset read the same way, the official test split.

    Raises:
        TypeError: ``dataset`` is not indexable with a length, or an item is not an ``(input, label)`` pair.
        ValueError: ragged inputs, float images outside [0, 1], and what :func:`from_arrays` refuses.
    """

    def read(ds: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
        if not (hasattr(ds, "__len__") and hasattr(ds, "__getitem__")):
            raise TypeError(
                f"{what} must be a map-style torch Dataset (with __len__ and __getitem__), got {type(ds).__name__}"
            )
        xs, ys = [], []
        for i in range(len(ds)):
            item = ds[i]
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise TypeError(f"{what}[{i}] must be an (input, label) pair, got {type(item).__name__}")
            x, label = item
            xs.append(x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x))
            ys.append(int(label.item() if hasattr(label, "item") else label))
        if not xs:
            raise ValueError(f"{what} is empty")
        shapes = {x.shape for x in xs}
        if len(shapes) != 1:
            raise ValueError(f"{what}: inputs of different shapes {sorted(shapes)[:3]}")
        X = np.stack(xs)
        if X.ndim == _IMAGE_NDIM and np.issubdtype(X.dtype, np.floating):
            if X.size and (X.min() < 0.0 or X.max() > 1.0):
                raise ValueError(
                    f"{what}: float images must lie in [0, 1] (ToTensor's range); pass uint8 pixels "
                    "and normalise in the model"
                )
            X = np.rint(X * 255.0).astype(np.uint8)
        return X, np.asarray(ys, dtype=np.int64)

    X, y = read(dataset, "dataset")
    test_arrays = None if test is None else read(test, "test")
    if X.ndim not in (2, _IMAGE_NDIM):
        raise ValueError(f"dataset items of {X.ndim - 1} dimensions are not supported (1-D features or 3-D images)")
    kind = kind or ("image" if X.ndim == _IMAGE_NDIM else "tabular")
    return from_arrays(
        X,
        y,
        num_classes=num_classes,
        kind=kind,
        name=name,
        test=test_arrays,
        source=f"torch Dataset {type(dataset).__name__}",
    )


# ------------------------------------------------------------------------------------- loader helpers


class _Loaded(NamedTuple):
    """What a loader hands to :func:`load_dataset`: the arrays and provenance, before validation."""

    X: np.ndarray
    y: np.ndarray
    test: tuple[np.ndarray, np.ndarray] | None
    num_classes: int
    kind: str
    info: dict[str, Any]


def _draw_seed(gen: np.random.Generator) -> int:
    """A seed in [0, 2**32) for third-party generators that take an int (recorded in ``info``)."""
    return int(gen.integers(0, 2**32))


#: The largest count any option or split size may be (an int64 index); beyond it the value is only described.
_MAX_COUNT = 2**63 - 1
#: The most values (rows x features) a generated dataset may hold; larger requests are refused before any work.
_MAX_GENERATED = 10**8
#: The largest scale (class separation, noise) a generator accepts: its data must stay finite in float32.
_MAX_SCALE = 1e6


def _check_count(value: object, name: str, *, low: int, high: int = _MAX_COUNT) -> int:
    """An integer in [low, high] (:func:`check_int`'s rules; an out-of-range value is shown shortened)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)) and not low <= value <= high:
        where = f">= {low}" if value < low and high == _MAX_COUNT else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {where}, got {describe(value)}")
    return check_int(value, name, low=low, high=high)


def _check_generated(n: int, width: int, what: str) -> None:
    """Refuse a generated set of more than :data:`_MAX_GENERATED` values before generating anything."""
    if n * width > _MAX_GENERATED:
        raise ValueError(
            f"{what}: n={n} rows x {width} features = {n * width} values is more than the "
            f"{_MAX_GENERATED} a generated set may hold; lower n (or the number of features)"
        )


def _take_rows(
    parts: Sequence[tuple[np.ndarray, np.ndarray]], n: int | None, gen: np.random.Generator, what: str
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Concatenate ``parts`` [(X_i (m_i, ...), y_i (m_i,))] into (X (N, ...), y (N,)), or, with a cap ``n``,
    into a uniformly random subset of ``n`` rows drawn without replacement (kept in file order), selected
    part by part so the full concatenation is never built. Returns (X, y, record for ``info``)."""
    sizes = [len(y) for _, y in parts]
    total = sum(sizes)
    if n is None:
        if len(parts) == 1:
            return parts[0][0], parts[0][1], {"available": total}
        return (np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts]), {"available": total})
    if n > total:
        raise ValueError(f"n={n} is larger than the {total} examples available in {what}")
    chosen = np.sort(gen.choice(total, size=n, replace=False))
    bounds = np.searchsorted(chosen, np.cumsum([0, *sizes]))
    offsets = np.cumsum([0, *sizes])
    rows = [chosen[bounds[i] : bounds[i + 1]] - offsets[i] for i in range(len(parts))]
    X = np.concatenate([X[r] for (X, _), r in zip(parts, rows)])
    y = np.concatenate([y[r] for (_, y), r in zip(parts, rows)])
    return X, y, {"available": total, "subset": n}


# ---------------------------------------------------------------------------------- tabular and sequence


def _load_sklearn(name: str, *, n: int | None, gen: np.random.Generator, root: object) -> _Loaded:
    """A scikit-learn bundled set (``load_<name>``): raw features as float32, optional random cap ``n``."""
    from sklearn import datasets as sk_datasets

    bunch = getattr(sk_datasets, f"load_{name}")()
    X, y, rows = _take_rows([(bunch.data, bunch.target)], n, gen, name)
    info = {"source": f"sklearn.datasets.load_{name}", "version": metadata.version("scikit-learn"), **rows}
    return _Loaded(X, y, None, len(bunch.target_names), "tabular", info)


def _load_gaussian_mixture(
    *,
    n: int | None,
    gen: np.random.Generator,
    root: object,
    dim: int = 20,
    num_classes: int = 5,
    class_sep: float = 1.0,
    informative: int | None = None,
    clusters_per_class: int = 1,
) -> _Loaded:
    """``sklearn.datasets.make_classification`` without label noise (``flip_y=0``) and without redundant
    features: ``informative`` Gaussian dimensions (default ``dim // 2``) plus ``dim - informative`` pure-noise
    ones; each class is ``clusters_per_class`` Gaussian clusters on hypercube vertices ``2 * class_sep``
    apart (``class_sep`` in (0, 1e6) is the difficulty knob: smaller = harder). ``n`` samples (default 5000),
    at least ``num_classes * clusters_per_class`` (a sample per cluster), and ``n * dim`` at most 10**8."""
    n = 5000 if n is None else n
    dim = _check_count(dim, "dim", low=1, high=_MAX_GENERATED)
    num_classes = _check_count(num_classes, "num_classes", low=2, high=_MAX_GENERATED)
    informative = max(1, dim // 2) if informative is None else _check_count(informative, "informative", low=1, high=dim)
    clusters_per_class = _check_count(clusters_per_class, "clusters_per_class", low=1, high=_MAX_GENERATED)
    class_sep = check_real(class_sep, "class_sep", low=0.0, high=_MAX_SCALE, low_open=True, high_open=True)
    _check_generated(n, dim, "gaussian_mixture")
    clusters = num_classes * clusters_per_class
    if clusters > n:
        raise ValueError(
            f"num_classes * clusters_per_class = {clusters} is more than n={n}: every cluster needs a sample"
        )
    if (clusters - 1).bit_length() > informative:  # clusters > 2**informative, without computing the power
        raise ValueError(
            f"num_classes * clusters_per_class = {clusters} must be <= 2**informative = 2**{informative}: raise "
            "informative (or dim)"
        )
    from sklearn.datasets import make_classification

    seed = _draw_seed(gen)
    X, y = make_classification(
        n_samples=n,
        n_features=dim,
        n_informative=informative,
        n_redundant=0,
        n_repeated=0,
        n_classes=num_classes,
        n_clusters_per_class=clusters_per_class,
        class_sep=class_sep,
        flip_y=0.0,
        shuffle=True,
        random_state=seed,
    )
    options = {
        "dim": dim,
        "num_classes": num_classes,
        "class_sep": class_sep,
        "informative": informative,
        "clusters_per_class": clusters_per_class,
    }
    info = {
        "source": "sklearn.datasets.make_classification",
        "version": metadata.version("scikit-learn"),
        "options": options,
        "random_state": seed,
        "available": n,
    }
    return _Loaded(X, y, None, num_classes, "tabular", info)


@contextlib.contextmanager
def _isolated_global_rngs() -> Iterator[None]:
    """Restore numpy's legacy global RNG and Python's ``random`` on exit (for code that seeds them)."""
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)


def _load_mnist1d(
    *,
    n: int | None,
    gen: np.random.Generator,
    root: object,
    train_split: float | None = None,
    iid_noise_scale: float | None = None,
    corr_noise_scale: float | None = None,
    shuffle_seq: bool | None = None,
) -> _Loaded:
    """MNIST-1D generated locally by ``mnist1d.data.make_dataset`` (never its downloading ``get_dataset``).

    ``n`` (default 5000, a multiple of 10: classes are balanced) is the number generated in all; the first
    ``train_split`` (default 0.8) become ``X`` (n_train, 40), the rest the official test split. Options left
    at ``None`` keep the package's defaults (``get_dataset_args()``). The package seeds numpy's and Python's
    global RNGs; both are restored afterwards, so the caller's global state is untouched (other threads
    drawing from those global RNGs during the generation would see the package's stream)."""
    n = 5000 if n is None else n
    if n % 10:
        raise ValueError(f"n must be a multiple of 10 for mnist1d (balanced over its 10 classes), got {n}")
    overrides = {
        "train_split": None
        if train_split is None
        else check_real(train_split, "train_split", low=0.0, high=1.0, low_open=True, high_open=True),
        "iid_noise_scale": None
        if iid_noise_scale is None
        else check_real(iid_noise_scale, "iid_noise_scale", low=0.0, high=_MAX_SCALE, high_open=True),
        "corr_noise_scale": None
        if corr_noise_scale is None
        else check_real(corr_noise_scale, "corr_noise_scale", low=0.0, high=_MAX_SCALE, high_open=True),
        "shuffle_seq": None if shuffle_seq is None else check_flag(shuffle_seq, "shuffle_seq"),
    }
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    _check_generated(n, args.final_seq_length, "mnist1d")
    for key, value in overrides.items():
        if value is not None:
            setattr(args, key, value)
    n_train = int(n * args.train_split)
    if not 0 < n_train < n:
        raise ValueError(f"train_split={args.train_split} of n={n} leaves an empty train or test split")
    args.num_samples, args.seed = n, _draw_seed(gen)
    with _isolated_global_rngs():
        data = make_dataset(args)
    used = {k: v for k, v in vars(args).items() if k != "url"}
    info = {
        "source": "mnist1d.data.make_dataset",
        "version": metadata.version("mnist1d"),
        "args": used,
        "random_state": args.seed,
        "available": n_train,
    }
    return _Loaded(data["x"], data["y"], (data["x_test"], data["y_test"]), 10, "sequence", info)


# ------------------------------------------------------------------------------------- image formats


class _FormatError(ValueError):
    """What a reader finds wrong in a file's content; :func:`_reading` adds the file's path."""


class _RefusedPickle(_FormatError, pickle.UnpicklingError):
    """A dataset pickle that names a global outside :data:`_PICKLE_ALLOWED` or declares more than its bytes
    hold: a ``ValueError`` like every damaged file, and the ``pickle.UnpicklingError`` the restricted unpickler
    has always raised."""


#: What a reader passes on unchanged: a file that cannot be opened (missing, a folder, not permitted) or a
#: machine out of memory is not a damaged file.
_NOT_THE_CONTENT = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, MemoryError)


@contextlib.contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Run a reader of ``path`` (a ``what``) inside this: whatever the file's content makes it raise becomes one
    ``ValueError`` naming the file, with the library's exception as ``__cause__`` (:data:`_NOT_THE_CONTENT`
    passes unchanged)."""
    try:
        yield
    except _FormatError as exc:
        kind = _RefusedPickle if isinstance(exc, _RefusedPickle) else ValueError
        raise kind(f"{path}: {exc}") from exc.__cause__
    except _NOT_THE_CONTENT:
        raise
    except Exception as exc:
        raise ValueError(f"{path}: not a valid {what} ({type(exc).__name__}: {str(exc)[:200]})") from exc


def _refuse_pickle(what: str) -> _RefusedPickle:
    """The error for a dataset pickle that asks for ``what``."""
    return _RefusedPickle(f"refusing {what}")


def _pickle_bytes(*args: object) -> bytes:
    """``bytes()`` as protocol-2 pickles write an empty ``bytes`` (nothing else is allowed)."""
    if args:
        raise _refuse_pickle("bytes(...) with arguments")
    return b""


def _pickle_latin1(text: object, encoding: object = "latin1") -> bytes:
    """``_codecs.encode(text, "latin1")`` as protocol-2 pickles write ``bytes``; no other codec."""
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding not in ("latin1", "latin-1"):
        raise _refuse_pickle(f"_codecs.encode with encoding {describe(encoding)}")
    return text.encode("latin1")


def _pickle_dtype(spec: object, align: object = False, copy: object = True) -> np.dtype:
    """``numpy.dtype(spec, align, copy)`` as pickles write it, always a new object: the state the pickle then
    sets on it must never reach numpy's shared built-in dtypes."""
    if not isinstance(spec, (str, bytes)) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise _refuse_pickle(f"numpy.dtype({describe(spec)}, {describe(align)}, {describe(copy)})")
    return np.dtype(spec.decode("ascii") if isinstance(spec, bytes) else spec, align, True)


def _plain_dtype(dtype: object) -> np.dtype:
    """A pickled array's or scalar's dtype, remade from its type string: booleans, integers and floats only
    (the state a pickle sets on a dtype can claim that it holds Python objects, and numpy trusts that)."""
    if not isinstance(dtype, np.dtype):
        raise _refuse_pickle(f"an array dtype of type {type(dtype).__name__}")
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype is not None or dtype.hasobject:
        raise _refuse_pickle(f"dtype {dtype.str!r}: only boolean, integer and float arrays are read")
    return np.dtype(dtype.str)


def _pickled_shape(shape: object) -> tuple[int, ...]:
    """A pickled array's shape: a tuple of at most 32 ints in [0, 2**63)."""
    if (
        not isinstance(shape, tuple)
        or len(shape) > 32
        or any(type(size) is not int or not 0 <= size < 2**63 for size in shape)
    ):
        raise _refuse_pickle(f"array shape {describe(shape)}")
    return shape


class _PickledArray(np.ndarray):
    """An array being unpickled (what :func:`_pickle_reconstruct` makes): ``__setstate__`` admits plain
    numeric dtypes only and checks that the declared shape is exactly the bytes present before numpy sees the
    state. Read it through ``np.asarray`` (a plain ndarray view)."""

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) != 5:
            raise _refuse_pickle("an array state that is not numpy's (version, shape, dtype, fortran, data)")
        version, shape, dtype, fortran, raw = state
        shape, dtype = _pickled_shape(shape), _plain_dtype(dtype)
        needed = math.prod(shape) * dtype.itemsize
        if type(version) is not int or not isinstance(fortran, bool) or type(raw) is not bytes or len(raw) != needed:
            held = f"{len(raw)} bytes" if type(raw) is bytes else f"a {type(raw).__name__}"
            raise _refuse_pickle(f"an array of shape {shape} and dtype {dtype} ({needed} bytes) made from {held}")
        super().__setstate__((version, shape, dtype, fortran, raw))


#: What ``numpy.ndarray`` resolves to in a dataset pickle: a token that only :func:`_pickle_reconstruct`
#: accepts, so that a file cannot call ``ndarray(shape)`` and allocate what it declares.
_NDARRAY = object()


def _pickle_reconstruct(subtype: object, shape: object, typecode: object) -> np.ndarray:
    """``numpy...._reconstruct(ndarray, (0,), b"b")``, the call every numpy pickles arrays with: an empty
    :class:`_PickledArray` whose ``__setstate__`` then receives the real dtype, shape and bytes."""
    plain_typecode = isinstance(typecode, (str, bytes)) and typecode in (b"b", "b")
    if subtype is not _NDARRAY or _pickled_shape(shape) != (0,) or not plain_typecode:
        raise _refuse_pickle(f"_reconstruct with shape {describe(shape)} and type code {describe(typecode)}")
    return _PickledArray((0,), dtype=np.int8)


_SCALAR = np.int64(0).__reduce__()[0]  # numpy's scalar reconstructor, whatever its module is called


def _pickle_scalar(dtype: object, data: object = None) -> np.generic:
    """``numpy....scalar(dtype, data)``: a plain numeric dtype and exactly its itemsize of bytes."""
    dtype = _plain_dtype(dtype)
    if type(data) is not bytes or len(data) != dtype.itemsize:
        raise _refuse_pickle(f"a {dtype} scalar made from {describe(data)}")
    return _SCALAR(dtype, data)


#: The only globals a CIFAR pickle may name, each checking its arguments: numpy arrays, dtypes and scalars
#: (numpy 1 and 2 module names) and the two ways protocol 2 spells bytes. Containers, ints and strings need
#: no global.
_PICKLE_ALLOWED: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _pickle_reconstruct for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _pickle_scalar for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _pickle_dtype,
    ("_codecs", "encode"): _pickle_latin1,
    ("builtins", "bytes"): _pickle_bytes,
    ("__builtin__", "bytes"): _pickle_bytes,
}

_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_PICKLE_ALLOWED`; any other global (``os.system``,
    ``builtins.eval``, a class with a malicious ``__reduce__``...) raises :class:`pickle.UnpicklingError`
    before anything is called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise _refuse_pickle(
                f"to load global {module}.{name}: only numpy arrays and plain containers are allowed in a dataset "
                "pickle (a crafted file could otherwise run code)"
            ) from None


def _check_pickle_sizes(data: bytes) -> None:
    """Walk the opcodes of ``data`` before unpickling it: :func:`pickletools.genops` checks every length an
    opcode declares against the bytes that remain, and a memo index may not exceed the number of opcodes
    before it (the C unpickler allocates both before reading)."""
    for count, (opcode, arg, _) in enumerate(pickletools.genops(data)):
        if opcode.name in _MEMO_PUTS and arg > count:
            raise _refuse_pickle(f"memo index {describe(arg)} at opcode {count}")


def _load_pickle(path: Path) -> Any:
    """Unpickle ``path`` (``encoding="bytes"``, as written by Python 2) with :class:`_RestrictedUnpickler`,
    after :func:`_check_pickle_sizes`."""
    data = path.read_bytes()
    _check_pickle_sizes(data)
    return _RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


def _planes_to_nchw(data: object, size: int) -> np.ndarray:
    """Rows of channel planes (m, 3*size*size) uint8 (R plane, G plane, B plane, each row-major) to
    (m, 3, size, size) uint8 (a view, no copy)."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * size * size:
        got = f"shape {data.shape} dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise _FormatError(f"expected image rows of shape (m, {3 * size * size}) uint8, got {got}")
    return np.asarray(data).reshape(-1, 3, size, size)


def _label_vector(labels: object, m: int, low: int, high: int) -> np.ndarray:
    """Labels read from a file as (m,) int64 in ``low..high`` (integers, or integral floats as MATLAB stores
    them)."""
    arr = np.asarray(labels).reshape(-1)
    if arr.shape[0] != m or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise _FormatError(f"expected {m} numeric labels, got {arr.shape[0]} of dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        finite = np.isfinite(arr).all() and (np.abs(arr) < 2**31).all()
        if not (finite and np.array_equal(arr, np.round(arr))):
            raise _FormatError("labels must be integers")
    y = arr.astype(np.int64)
    if y.size and (y.min() < low or y.max() > high):
        raise _FormatError(f"labels must lie in {low}..{high}, found [{y.min()}, {y.max()}]")
    return y


def _read_cifar_pickle(path: Path, *, label_key: bytes, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: a pickled dict with b"data" (m, 3072) uint8 and ``label_key`` (m ints in
    ``0 .. num_classes-1``).
    Returns (X (m, 3, 32, 32) uint8, y (m,) int64)."""
    with _reading(path, "CIFAR batch"):
        batch = _load_pickle(path)
        if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
            got = sorted(map(describe, batch))[:8] if isinstance(batch, dict) else type(batch).__name__
            raise _FormatError(f"not a CIFAR batch: expected a dict with keys b'data' and {label_key!r}, got {got}")
        X = _planes_to_nchw(batch[b"data"], 32)
        return X, _label_vector(batch[label_key], X.shape[0], 0, num_classes - 1)


#: Level-5 MAT-file data types of numeric data (type number: numpy type code; the file sets the byte order).
_MAT_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 9: "f8", 12: "i8", 13: "u8"}
#: MATLAB classes of numeric arrays (class number: numpy type code).
_MAT_CLASSES = {6: "f8", 7: "f4", 8: "i1", 9: "u1", 10: "i2", 11: "u2", 12: "i4", 13: "u4", 14: "i8", 15: "u8"}
_MI_INT8, _MI_INT32, _MI_UINT32, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 14, 15
_MAT_COMPLEX = 0x800  # the complex bit of the array-flags word


def _mat_element(buf: memoryview, pos: int, order: str) -> tuple[int, memoryview, int]:
    """The data element at ``buf[pos:]``: (type, its data, where the next element starts, 8-byte aligned).
    The small format packs type and size (at most 4 bytes) into the tag's first word."""
    if len(buf) - pos < 8:
        raise _FormatError(f"truncated MAT-file: {len(buf) - pos} bytes where an 8-byte element tag should be")
    word, size = struct.unpack_from(order + "II", buf, pos)
    if word >> 16:
        small = word >> 16
        if small > 4:
            raise _FormatError(f"a small MAT element declares {small} bytes (at most 4 fit)")
        return word & 0xFFFF, buf[pos + 4 : pos + 4 + small], pos + 8
    start = pos + 8
    if size > len(buf) - start:
        raise _FormatError(f"truncated MAT-file: an element declares {size} bytes, {len(buf) - start} follow")
    return word, buf[start : start + size], start + size + (-size % 8)


def _mat_array(content: memoryview, order: str) -> tuple[str, np.ndarray | None]:
    """A MATLAB array element's content (flags, dimensions, name, data): its name and, for a real numeric
    array, its values (shape as declared, MATLAB's column-major layout; ``None`` for any other array)."""
    kind, flags, pos = _mat_element(content, 0, order)
    if kind != _MI_UINT32 or len(flags) != 8:
        raise _FormatError(f"a MATLAB array must start with 8 bytes of flags (type 6), got type {kind}")
    word = struct.unpack_from(order + "I", flags)[0]
    kind, dims, pos = _mat_element(content, pos, order)
    if kind != _MI_INT32 or len(dims) % 4 or len(dims) < 8:
        raise _FormatError(f"a MATLAB array's dimensions must be at least two int32 (type 5), got type {kind}")
    shape = struct.unpack(f"{order}{len(dims) // 4}i", dims)
    if min(shape) < 0:
        raise _FormatError(f"negative MATLAB array dimensions {shape}")
    kind, name, pos = _mat_element(content, pos, order)
    if kind != _MI_INT8:
        raise _FormatError(f"a MATLAB array's name must be int8 characters (type 1), got type {kind}")
    name = bytes(name).decode("ascii")
    if word & 0xFF not in _MAT_CLASSES or word & _MAT_COMPLEX:
        return name, None
    kind, data, _ = _mat_element(content, pos, order)
    target = np.dtype(_MAT_CLASSES[word & 0xFF])
    stored = np.dtype(order + _MAT_TYPES[kind]) if kind in _MAT_TYPES else None
    if stored is None or not np.can_cast(stored, target) or len(data) != math.prod(shape) * stored.itemsize:
        raise _FormatError(
            f"{name}: a {target} array of shape {shape} cannot be read from {len(data)} bytes of data type {kind}"
        )
    return name, np.frombuffer(data, stored).reshape(shape, order="F").astype(target, copy=False)


def _inflate(blob: bytes, order: str) -> memoryview:
    """A compressed MAT element (a zlib stream holding one whole element: tag and data), decompressed no
    further than the size its tag declares."""
    head = zlib.decompressobj().decompress(blob[:1024], 8)
    if len(head) < 8:
        raise _FormatError("a compressed MAT element too short to hold an element tag")
    total = 8 + struct.unpack_from(order + "I", head, 4)[0]
    element = zlib.decompressobj().decompress(blob, total)
    if len(element) != total:
        raise _FormatError(f"a compressed MAT element declares {total} bytes, its stream holds {len(element)}")
    return memoryview(element)


def _read_mat(path: Path, wanted: Sequence[str]) -> dict[str, np.ndarray | None]:
    """The variables of a level-5 MAT-file (MATLAB's format before the HDF5-based v7.3; compressed or not),
    read element by element, each declared size checked before it is read: ``{name: values}`` with the values
    of the ``wanted`` real numeric arrays, ``None`` for the other variables."""
    variables: dict[str, np.ndarray | None] = {}
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        header = fh.read(128)
        order = {b"IM": "<", b"MI": ">"}.get(header[126:128])
        if len(header) < 128 or order is None or struct.unpack_from(order + "H", header, 124)[0] != 0x0100:
            raise _FormatError(
                "not a level-5 MAT-file (the 128-byte header does not end in version 0x0100 "
                "and IM or MI; MATLAB v7.3 files are HDF5 and are not read)"
            )
        while fh.tell() < size:
            tag = fh.read(8)
            if len(tag) < 8:
                raise _FormatError(f"truncated MAT-file: {len(tag)} bytes where an 8-byte element tag should be")
            kind, nbytes = struct.unpack(order + "II", tag)
            if nbytes > size - fh.tell():
                raise _FormatError(f"truncated MAT-file: an element declares {nbytes} bytes, {size - fh.tell()} follow")
            element = fh.read(nbytes)
            if kind == _MI_COMPRESSED:
                kind, content, _ = _mat_element(_inflate(element, order), 0, order)
            else:
                content = memoryview(element)
            if kind == _MI_MATRIX:
                name, values = _mat_array(content, order)
                variables[name] = values if name in wanted else None
    return variables


def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``*_32x32.mat``: X (32, 32, 3, m) uint8 and y (m, 1) in 1..10 (10 = digit 0).
    Returns (X (m, 3, 32, 32) uint8, y (m,) int64 in 0..9)."""
    with _reading(path, "SVHN .mat file"):
        mat = _read_mat(path, ("X", "y"))
        images, labels = mat.get("X"), mat.get("y")
        if images is None or labels is None:
            raise _FormatError(f"not an SVHN file: expected numeric variables X and y, got {describe(sorted(mat))}")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
            raise _FormatError(f"expected X of shape (32, 32, 3, m) uint8, got {images.shape} {images.dtype}")
        y = _label_vector(labels, images.shape[3], 1, 10)
        return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), np.where(y == 10, 0, y)


#: The most deflate expands its input (258 bytes from each 2-bit code): bounds an npz member's true size.
_DEFLATE_MAX_RATIO = 1032
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _npz_array(archive: zipfile.ZipFile, key: str, archive_size: int) -> np.ndarray:
    """Array ``key`` of an npz archive (no pickles), once the shape its ``.npy`` header declares is checked
    against the bytes the archive holds for it: numpy allocates the declared shape before reading."""
    info = archive.getinfo(f"{key}.npy")
    ratio = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: _DEFLATE_MAX_RATIO}.get(info.compress_type)
    if ratio is None or info.compress_size > archive_size or info.file_size > ratio * info.compress_size:
        raise _FormatError(
            f"{key}: {info.file_size} bytes stored as {info.compress_size} (method "
            f"{info.compress_type}) cannot be in a {archive_size}-byte npz archive"
        )
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in _NPY_HEADERS:
            raise _FormatError(f"{key}: .npy format version {version} is not read (1.0 or 2.0)")
        shape, _, dtype = _NPY_HEADERS[version](member)
        declared, held = math.prod(shape) * dtype.itemsize, info.file_size - member.tell()
        if declared != held:
            raise _FormatError(
                f"{key}: its header declares shape {shape} of {dtype} ({declared} bytes), the archive holds {held}"
            )
        member.seek(0)
        return np.lib.format.read_array(member, allow_pickle=False)


def _read_imagenet_npz(path: Path, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One downsampled-ImageNet batch: npz with "data" (m, 3*size*size) uint8 channel planes and "labels"
    in 1..1000. Returns (X (m, 3, size, size) uint8, y (m,) int64 in 0..999)."""
    with _reading(path, "npz archive"), zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        if "data.npy" not in names or "labels.npy" not in names:
            raise _FormatError(f"expected arrays 'data' and 'labels', got {describe(names)}")
        arrays = {key: _npz_array(archive, key, path.stat().st_size) for key in ("data", "labels")}
        X = _planes_to_nchw(arrays["data"], size)
        return X, _label_vector(arrays["labels"], X.shape[0], 1, 1000) - 1


#: IDX type codes (the third byte of the magic number); only unsigned bytes are read.
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}
_IDX_UBYTE = 0x08


def _read_maybe_gzipped(path: Path) -> bytes:
    """The bytes of ``path``, decompressed when its name ends in ``.gz``; a corrupt gzip stream raises
    ``ValueError`` naming the file."""
    if path.suffix.lower() != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as fh:
            return fh.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _FormatError(f"corrupt gzip stream ({exc})") from exc


def _idx_shape(data: bytes, ndim: int | None) -> tuple[int, ...]:
    """Check an IDX header (two zero bytes, type code 0x08, the number of dimensions, then that many big-endian
    uint32 sizes) and that exactly the promised bytes follow it. Returns the array's shape."""
    if len(data) < 4:
        raise _FormatError(f"not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    if data[0] != 0 or data[1] != 0:
        raise _FormatError(
            f"not an IDX file: wrong magic number 0x{data[:4].hex()} (it must start with two zero bytes)"
        )
    code, dims = data[2], data[3]
    if code != _IDX_UBYTE:
        kind = _IDX_TYPES.get(code, "unknown")
        raise _FormatError(f"IDX type code 0x{code:02x} ({kind}) is not supported; only 0x08 (unsigned byte)")
    if dims == 0 or (ndim is not None and dims != ndim):
        wanted = "at least 1" if ndim is None else str(ndim)
        raise _FormatError(f"wrong IDX magic number 0x{data[:4].hex()}: {dims} dimensions, expected {wanted}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise _FormatError(f"truncated IDX file: {len(data)} bytes, the header of {dims} sizes needs {header}")
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    promised, present = math.prod(shape), len(data) - header
    if present < promised:
        raise _FormatError(f"truncated IDX file: shape {shape} needs {promised} data bytes, found {present}")
    if present > promised:
        raise _FormatError(f"{present - promised} trailing bytes after the {promised} data bytes of shape {shape}")
    return shape


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """One IDX file (the MNIST format), plain or gzipped (a name ending in ``.gz``), as a uint8 array.

    The file is the magic number (two zero bytes, the type code 0x08 = unsigned byte, the number of dimensions
    d), d big-endian uint32 sizes, then the data in C order, nothing after it.

    Args:
        path: the file.
        ndim: the number of dimensions required (3 for images, 1 for labels); ``None`` accepts any.

    Returns:
        A read-only uint8 array of the header's shape (a view of the file's bytes, no copy).

    Raises:
        ValueError: naming the file: a wrong magic number or number of dimensions, a type other than unsigned
            byte (the code is named), fewer data bytes than the sizes promise or bytes after them, a corrupt
            gzip stream.
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    with _reading(path, "IDX file"):
        data = _read_maybe_gzipped(path)
        shape = _idx_shape(data, ndim)
        return np.frombuffer(data, dtype=np.uint8, count=math.prod(shape), offset=4 + 4 * len(shape)).reshape(shape)


def _read_idx_pair(images: Path, labels: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """An IDX images file (m, H, W) and its labels file (m,) in 0..num_classes-1.
    Returns (X (m, 1, H, W) uint8 (a view), y (m,) int64)."""
    X = read_idx(images, ndim=3)
    y = read_idx(labels, ndim=1)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{images} holds {X.shape[0]} images but {labels} holds {y.shape[0]} labels")
    if y.size and int(y.max()) >= num_classes:
        raise ValueError(f"{labels}: labels must lie in 0..{num_classes - 1}, found {int(y.max())}")
    return X[:, None], y.astype(np.int64)


class _ImageSource(NamedTuple):
    """Where an image set comes from: the subfolder token searched, its usual folder, the download page,
    tokens that disqualify a subfolder (other sets whose names contain the token) and advice added to the
    missing-files error."""

    token: str
    folder: str
    url: str
    exclude: tuple[str, ...] = ()
    hint: str = ""


_IMAGE_SOURCES = {
    "cifar10": _ImageSource(
        "cifar10", "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
    ),
    "cifar100": _ImageSource(
        "cifar100", "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
    ),
    "svhn": _ImageSource("svhn", "svhn", "http://ufldl.stanford.edu/housenumbers/ (format 2, *_32x32.mat)"),
    "imagenet32": _ImageSource(
        "imagenet32", "Imagenet32_train_npz", "https://image-net.org/download-images (Downsampled ImageNet 32x32, npz)"
    ),
    "imagenet64": _ImageSource(
        "imagenet64",
        "Imagenet64_train_part1_npz",
        "https://image-net.org/download-images (Downsampled ImageNet 64x64, npz)",
    ),
    "fashion_mnist": _ImageSource(
        "fashionmnist",
        "fashion-mnist",
        "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)",
        hint="Or install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist; its "
        "files go to /usr/share/datasets/fashion-mnist, read when neither root= nor "
        f"{DATA_ENV} is given), or pass root=... (the folder holding the files).",
    ),
    "mnist": _ImageSource(
        "mnist",
        "mnist",
        "http://yann.lecun.com/exdb/mnist/ (or one of its mirrors)",
        exclude=("fashion", "kmnist", "emnist", "qmnist"),
    ),
    "kmnist": _ImageSource(
        "kmnist", "kmnist", "https://github.com/rois-codh/kmnist (Kuzushiji-MNIST, the MNIST-format .gz files)"
    ),
}

#: The four IDX files of an MNIST-format set (train images and labels, then the test split), in that order.
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _resolve_root(
    root: str | os.PathLike[str] | None, name: str, default: str | os.PathLike[str] | None = None
) -> Path:
    """``root``, else ``$ROBUSTDISTILL_DATA``, else ``default`` (a set's system folder), as a Path;
    ``ValueError`` when none is given."""
    if root is None:
        root = os.environ.get(DATA_ENV) or default
    if root is None:
        raise ValueError(
            f"{name} is read from a local folder: pass root=... (the folder holding its files, or its parent) "
            f"or set the {DATA_ENV} environment variable (get its files from {_IMAGE_SOURCES[name].url})"
        )
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a str or os.PathLike, got {type(root).__name__}")
    return Path(root).expanduser()


def _normalised(folder_name: str) -> str:
    return "".join(ch for ch in folder_name.lower() if ch.isalnum())


def _in_folder(folder: Path, filename: str, gzipped: bool) -> Path | None:
    """``folder / filename`` if it is a file, else (``gzipped``) ``folder / (filename + ".gz")`` if it is one."""
    for candidate in (filename, f"{filename}.gz") if gzipped else (filename,):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _locate(
    name: str, root: Path, filenames: Sequence[str], *, gzipped: bool = False, defaulted: bool = False
) -> dict[str, Path]:
    """Find each of ``filenames`` in ``root`` or in an immediate subfolder of it whose normalised name
    contains the set's token (and none of its excluded tokens); with ``gzipped``, ``NAME.gz`` stands in for a
    missing ``NAME`` (the plain file wins when a folder has both). ``defaulted``: ``root`` is the set's system
    folder, used because no root was given. Raises one :class:`FileNotFoundError` listing everything expected
    when any file (or ``root``) is missing, and ``ValueError`` when a file is found in two subfolders."""
    source = _IMAGE_SOURCES[name]
    folders = [root]
    if root.is_dir():
        folders += sorted(
            d
            for d in root.iterdir()
            if d.is_dir()
            and source.token in _normalised(d.name)
            and not any(token in _normalised(d.name) for token in source.exclude)
        )
    found: dict[str, Path] = {}
    for filename in filenames:
        hits = [hit for folder in folders if (hit := _in_folder(folder, filename, gzipped)) is not None]
        if len(hits) > 1 and hits[0].parent != root:
            raise ValueError(
                f"{name}: {filename} is in several folders ({', '.join(map(str, hits))}); "
                "pass root pointing at the folder to use"
            )
        if hits:
            found[filename] = hits[0]
    missing = [f for f in filenames if f not in found]
    if missing:
        if root.is_dir():
            where = f"missing under {root}: {', '.join(missing)}"
        elif defaulted:
            where = f"no root= given, {DATA_ENV} is unset and the default folder {root} does not exist"
        else:
            where = f"folder {root} does not exist (or is not a folder)"
        forms = " (each plain or gzipped as NAME.gz; the plain file is used when both exist)" if gzipped else ""
        example = "" if defaulted else f" (e.g. {root / source.folder})"
        hint = f" {source.hint}" if source.hint else ""
        raise FileNotFoundError(
            f"{name}: {where}. Expected the files {', '.join(filenames)}{forms} in root or in an immediate "
            f"subfolder whose name contains '{source.token}'{example}. Get them from {source.url}.{hint}"
        )
    return found


def _load_images(
    name: str,
    root: str | os.PathLike[str] | None,
    train: Sequence[str],
    test: Sequence[str],
    read: Callable[[Path], tuple[np.ndarray, np.ndarray]],
    num_classes: int,
    *,
    n: int | None,
    gen: np.random.Generator,
    options: dict[str, Any],
) -> _Loaded:
    """Locate and read an image set's train files (optionally capped at ``n`` random rows) and test files."""
    folder = _resolve_root(root, name)
    paths = _locate(name, folder, [*train, *test])
    X, y, rows = _take_rows([read(paths[f]) for f in train], n, gen, name)
    X_test, y_test, _ = _take_rows([read(paths[f]) for f in test], None, gen, name)
    info = {
        "source": _IMAGE_SOURCES[name].url,
        "root": str(folder),
        "files": [str(paths[f]) for f in (*train, *test)],
        "options": options,
        **rows,
    }
    return _Loaded(X, y, (X_test, y_test), num_classes, "image", info)


def _load_cifar10(*, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None) -> _Loaded:
    """CIFAR-10 python version: ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch``."""
    train = [f"data_batch_{i}" for i in range(1, 6)]
    read = partial(_read_cifar_pickle, label_key=b"labels", num_classes=10)
    return _load_images("cifar10", root, train, ["test_batch"], read, 10, n=n, gen=gen, options={})


def _load_cifar100(
    *, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None, label_mode: str = "fine"
) -> _Loaded:
    """CIFAR-100 python version: ``train`` and ``test``; ``label_mode`` "fine" (100 classes) or "coarse" (20)."""
    if not isinstance(label_mode, str):
        raise TypeError(f"label_mode must be a str, 'fine' or 'coarse', got {type(label_mode).__name__}")
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {describe(label_mode)}")
    num_classes = 100 if label_mode == "fine" else 20
    read = partial(_read_cifar_pickle, label_key=f"{label_mode}_labels".encode(), num_classes=num_classes)
    return _load_images(
        "cifar100", root, ["train"], ["test"], read, num_classes, n=n, gen=gen, options={"label_mode": label_mode}
    )


def _load_svhn(
    *, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None, extra: bool = False
) -> _Loaded:
    """SVHN format 2: ``train_32x32.mat`` (+ ``extra_32x32.mat`` with ``extra=True``) and ``test_32x32.mat``."""
    extra = check_flag(extra, "extra")
    train = ["train_32x32.mat", "extra_32x32.mat"] if extra else ["train_32x32.mat"]
    return _load_images(
        "svhn", root, train, ["test_32x32.mat"], _read_svhn_mat, 10, n=n, gen=gen, options={"extra": extra}
    )


def _check_batches(batches: object) -> list[int]:
    """ImageNet train batch numbers: None (all of 1..10) or distinct ints in 1..10."""
    if batches is None:
        return list(range(1, 11))
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise TypeError(f"batches must be a sequence of ints in 1..10 or None, got {type(batches).__name__}")
    chosen = [_check_count(b, "batches", low=1, high=10) for b in batches]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"batches must be distinct ints in 1..10 (at least one), got {describe(chosen)}")
    return chosen


def _load_imagenet(
    size: int,
    *,
    n: int | None,
    gen: np.random.Generator,
    root: str | os.PathLike[str] | None,
    batches: Sequence[int] | None = None,
) -> _Loaded:
    """Downsampled ImageNet (size 32 or 64): ``train_data_batch_<i>.npz`` for ``batches`` (default 1..10;
    fewer batches = less memory) and ``val_data.npz`` (the test split)."""
    chosen = _check_batches(batches)
    train = [f"train_data_batch_{i}.npz" for i in chosen]
    read = partial(_read_imagenet_npz, size=size)
    return _load_images(
        f"imagenet{size}", root, train, ["val_data.npz"], read, 1000, n=n, gen=gen, options={"batches": chosen}
    )


def _load_idx(
    name: str,
    root: str | os.PathLike[str] | None,
    *,
    n: int | None,
    gen: np.random.Generator,
    default: str | os.PathLike[str] | None = None,
) -> _Loaded:
    """An MNIST-format set: the four :data:`_IDX_FILES` (each plain or ``.gz``) from ``root``, else
    ``$ROBUSTDISTILL_DATA``, else ``default``; train rows optionally capped at ``n``; 10 classes."""
    defaulted = root is None and not os.environ.get(DATA_ENV) and default is not None
    folder = _resolve_root(root, name, default)
    paths = _locate(name, folder, _IDX_FILES, gzipped=True, defaulted=defaulted)
    train_images, train_labels, test_images, test_labels = (paths[f] for f in _IDX_FILES)
    X, y, rows = _take_rows([_read_idx_pair(train_images, train_labels, 10)], n, gen, name)
    X_test, y_test = _read_idx_pair(test_images, test_labels, 10)
    info = {
        "source": _IMAGE_SOURCES[name].url,
        "root": str(folder),
        "files": [str(paths[f]) for f in _IDX_FILES],
        "options": {},
        **rows,
    }
    return _Loaded(X, y, (X_test, y_test), 10, "image", info)


def _load_fashion_mnist(*, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None) -> _Loaded:
    """Fashion-MNIST: IDX files; default folder :data:`FASHION_MNIST_SYSTEM_DIR` (read when called, so it can
    be patched), where the Debian package ``dataset-fashion-mnist`` installs them."""
    return _load_idx("fashion_mnist", root, n=n, gen=gen, default=FASHION_MNIST_SYSTEM_DIR)


def _load_mnist(*, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None) -> _Loaded:
    """MNIST (handwritten digits): IDX files from the user's folder."""
    return _load_idx("mnist", root, n=n, gen=gen)


def _load_kmnist(*, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None) -> _Loaded:
    """Kuzushiji-MNIST: its MNIST-format IDX files (same names as MNIST's) from the user's folder."""
    return _load_idx("kmnist", root, n=n, gen=gen)


_LOADERS: dict[str, Callable[..., _Loaded]] = {
    **{name: partial(_load_sklearn, name) for name in ("digits", "wine", "breast_cancer", "iris")},
    "gaussian_mixture": _load_gaussian_mixture,
    "mnist1d": _load_mnist1d,
    "cifar10": _load_cifar10,
    "cifar100": _load_cifar100,
    "svhn": _load_svhn,
    "imagenet32": partial(_load_imagenet, 32),
    "imagenet64": partial(_load_imagenet, 64),
    "fashion_mnist": _load_fashion_mnist,
    "mnist": _load_mnist,
    "kmnist": _load_kmnist,
}

#: Every name :func:`load_dataset` accepts.
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def _options_of(loader: Callable[..., _Loaded]) -> list[str]:
    """The dataset-specific keyword options a loader accepts (all but n, gen, root)."""
    return [p for p in inspect.signature(loader).parameters if p not in ("n", "gen", "root")]


def load_dataset(
    name: str,
    root: str | os.PathLike[str] | None = None,
    *,
    n: int | None = None,
    rng: RNGLike = None,
    **options: Any,
) -> Dataset:
    """Load (or generate) a dataset by name; nothing is downloaded.

    Args:
        name: one of :data:`DATASETS`: ``digits``, ``wine``, ``breast_cancer``, ``iris`` (scikit-learn),
            ``gaussian_mixture``, ``mnist1d`` (generated), ``cifar10``, ``cifar100``, ``svhn``, ``imagenet32``,
            ``imagenet64`` (image folders), and the MNIST-format (IDX) image sets, (n, 1, 28, 28) uint8:

            - ``fashion_mnist``: Fashion-MNIST; default folder :data:`FASHION_MNIST_SYSTEM_DIR` (Debian
              package ``dataset-fashion-mnist``) when neither ``root`` nor ``ROBUSTDISTILL_DATA`` is given;
            - ``mnist``: MNIST handwritten digits, from the user's folder;
            - ``kmnist``: Kuzushiji-MNIST (github.com/rois-codh/kmnist), from the user's folder.
        root: folder of the image sets (the folder holding the files, or a parent of it); default the
            ``ROBUSTDISTILL_DATA`` environment variable, then (``fashion_mnist`` only)
            :data:`FASHION_MNIST_SYSTEM_DIR`. Ignored by the other sets.
        n: generators (``gaussian_mixture``, ``mnist1d``): the number of samples (default 5000; for mnist1d
            the total before its train/test split, a multiple of 10). Fixed sets: an optional cap on the
            training rows, a uniformly random subset without replacement kept in file order (recorded in
            ``info``); the official test split is kept whole.
        rng: ``np.random.Generator``, int seed or ``None``; seeds the generators and the subset. The same
            int gives the same dataset. No global RNG is touched (mnist1d's global seeding is undone).
        **options: per dataset: ``gaussian_mixture``: ``dim=20``, ``num_classes=5``, ``class_sep=1.0``
            (smaller = harder; below 1e6), ``informative=dim//2``, ``clusters_per_class=1``; ``mnist1d``:
            ``train_split``, ``iid_noise_scale``, ``corr_noise_scale`` (noise scales below 1e6),
            ``shuffle_seq`` (default: the package's); ``cifar100``: ``label_mode="fine"|"coarse"``; ``svhn``: ``extra=False``;
            ``imagenet32``/``imagenet64``: ``batches=None`` (train batch numbers in 1..10).

    Returns:
        A validated :class:`Dataset` (see its shapes); ``info`` records the source, files, options, the
        subset, the seeds drawn for third-party generators and ``rng`` when it was an int.

    Raises:
        ValueError: unknown name or option, bad option values (out of range, NaN or infinite, too large to
            generate: at most 10**8 values), ``n`` larger than the data, no ``root``; a damaged or malformed
            file (named in the message).
        TypeError: an option of the wrong type (a string or bool for a number, a number for a flag).
        FileNotFoundError: an image set's folder or files are missing (the message lists what is expected
            where).
        pickle.UnpicklingError: a CIFAR file names anything but numpy arrays and plain containers (a
            ``ValueError`` too).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    loader = _LOADERS[name]
    accepted = _options_of(loader)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(
            f"unknown option {', '.join(map(repr, unknown))} for dataset {name!r}; "
            f"it accepts {', '.join(accepted) if accepted else 'no options'}"
        )
    gen = check_rng(rng)
    if n is not None:
        n = _check_count(n, "n", low=1, high=_MAX_GENERATED)
    loaded = loader(n=n, gen=gen, root=root, **options)
    seed = int(rng) if isinstance(rng, numbers.Integral) else None
    return Dataset(
        name=name,
        X=loaded.X,
        y=loaded.y,
        num_classes=loaded.num_classes,
        kind=loaded.kind,
        test=loaded.test,
        info={**loaded.info, "rng": seed},
    )


# ---------------------------------------------------------------------------------------------- splits


@dataclass(frozen=True, eq=False)
class Splits:
    """Disjoint index sets of one dataset (int64, read-only).

    Attributes:
        labeled: (n_l,) rows of ``dataset.X`` with ground-truth labels (the student's labeled set).
        validation: (n_v,) rows of ``dataset.X`` held out for model selection / teacher-accuracy fits.
        unlabeled: (n_u,) rows of ``dataset.X`` forming the unlabeled pool.
        test: (n_t,) indices into ``dataset.test`` when ``test_official``, else rows of ``dataset.X``.
        test_official: whether ``test`` indexes the official test split.
        seed: the int ``rng`` the split was drawn with, ``None`` when a Generator or fresh entropy was used.
        stratified: whether ``labeled`` was drawn evenly per class.
    """

    labeled: IntArray
    validation: IntArray
    unlabeled: IntArray
    test: IntArray
    test_official: bool
    seed: int | None = None
    stratified: bool = False

    def __post_init__(self) -> None:
        for attr in ("labeled", "validation", "unlabeled", "test"):
            object.__setattr__(self, attr, _readonly(np.asarray(getattr(self, attr), dtype=np.int64)))

    def sizes(self) -> dict[str, int]:
        """Number of points in each split."""
        return {attr: int(getattr(self, attr).shape[0]) for attr in ("labeled", "validation", "unlabeled", "test")}

    def digest(self) -> str:
        """A short (16 hex) sha256 of the four index arrays and ``test_official``: a cache key for this split."""
        h = hashlib.sha256(b"official" if self.test_official else b"pool")
        for attr in ("labeled", "validation", "unlabeled", "test"):
            arr = np.ascontiguousarray(getattr(self, attr), dtype="<i8")
            h.update(np.int64(arr.shape[0]).astype("<i8").tobytes())
            h.update(arr.tobytes())
        return h.hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        """Sizes, seed, test_official, stratified and the digest (no index arrays); JSON-ready."""
        return {
            "sizes": self.sizes(),
            "seed": self.seed,
            "test_official": self.test_official,
            "stratified": self.stratified,
            "digest": self.digest(),
        }


def _resolve_size(value: object, name: str, total: int) -> int:
    """A split size: an int count >= 0, or a float fraction in (0, 1) of ``total`` rounded down (>= 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an int count or a float fraction in (0, 1), got {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        return _check_count(value, name, low=0)
    try:
        fraction = float(value)
    except OverflowError:  # a fraction object beyond the float range
        fraction = math.inf
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} as a fraction must lie in (0, 1), got {describe(value)} (pass an int for a count)")
    count = math.floor(fraction * total)
    if count < 1:
        raise ValueError(f"{name}={value!r} of {total} points rounds down to 0; pass a larger fraction or a count")
    return count


def _stratified_mask(y_perm: np.ndarray, count: int, num_classes: int, gen: np.random.Generator) -> np.ndarray:
    """Boolean mask (N,) over permuted labels ``y_perm`` (N,) choosing ``count`` positions evenly per class:
    each class gets ``count // K`` (``count % K`` random classes one more), the earliest in permutation order.
    A class with fewer points gives all it has and the shortfall is filled with the earliest unchosen points
    of any class, so exactly ``count`` positions are chosen."""
    quota = np.full(num_classes, count // num_classes, dtype=np.int64)
    quota[gen.permutation(num_classes)[: count % num_classes]] += 1
    counts = np.bincount(y_perm, minlength=num_classes)
    starts = np.cumsum(counts) - counts
    rank = np.empty(y_perm.shape[0], dtype=np.int64)
    rank[np.argsort(y_perm, kind="stable")] = np.arange(y_perm.shape[0]) - np.repeat(starts, counts)
    mask = rank < quota[y_perm]
    shortfall = count - int(mask.sum())
    if shortfall > 0:
        mask[np.flatnonzero(~mask)[:shortfall]] = True
    return mask


def make_splits(
    dataset: Dataset,
    *,
    labeled: int | float,
    validation: int | float,
    unlabeled: int | float,
    test: int | float | None = None,
    rng: RNGLike = None,
    stratify: bool = False,
) -> Splits:
    """Cut ``dataset`` into disjoint labeled / validation / unlabeled / test index sets.

    Sizes are int counts or float fractions in (0, 1) of the ``N = len(dataset.y)`` training rows (rounded
    down, at least 1). One seeded permutation of the N rows is sliced into labeled, validation, unlabeled and
    (without an official split) test, so the parts never overlap.

    Args:
        dataset: a :class:`Dataset`.
        labeled, validation, unlabeled: the sizes of those parts.
        test: ``None``: the whole official test split (an error when the dataset has none). A size with an
            official split: that many points (a count, or a fraction of the official split) drawn at random
            from it. A size without one: carved from the training rows like the other parts.
        rng: ``np.random.Generator``, int seed (recorded as ``Splits.seed``) or ``None``.
        stratify: draw ``labeled`` evenly per class: ``labeled // K`` points each, the remainder one more
            for random classes; a class with too few points gives all it has and the shortfall is filled with
            random points of the other classes (``labeled`` always has the requested size).

    Returns:
        :class:`Splits` of int64 index arrays (``test`` indexes ``dataset.test`` when ``test_official``).

    Raises:
        ValueError: a size that is negative, rounds to 0 or is not in (0, 1) as a fraction; parts larger
            than the data (the message names every size and the total available); ``test=None`` without an
            official split.
        TypeError: ``dataset`` is not a :class:`Dataset`; a size or ``stratify`` of the wrong type.
    """
    if not isinstance(dataset, Dataset):
        raise TypeError(f"dataset must be a Dataset, got {type(dataset).__name__}")
    stratify = check_flag(stratify, "stratify")
    gen = check_rng(rng)
    total = int(dataset.y.shape[0])
    sizes = {
        key: _resolve_size(value, key, total)
        for key, value in (("labeled", labeled), ("validation", validation), ("unlabeled", unlabeled))
    }
    official = dataset.test is not None
    official_test = None
    if test is None:
        if not official:
            raise ValueError(
                f"dataset {dataset.name!r} has no official test split: pass test= (a count, or a fraction "
                f"of its {total} points)"
            )
        official_test = np.arange(dataset.test[1].shape[0])
    elif official:
        available = int(dataset.test[1].shape[0])
        count = _resolve_size(test, "test", available)
        if count > available:
            raise ValueError(f"test={count} is larger than the official test split ({available} points)")
        official_test = gen.choice(available, size=count, replace=False)
    else:
        sizes["test"] = _resolve_size(test, "test", total)
    needed = sum(sizes.values())
    if needed > total:
        parts = " + ".join(f"{key}={value}" for key, value in sizes.items())
        where = " outside its official test split" if official else ""
        raise ValueError(
            f"the splits need {parts} = {needed} points but dataset {dataset.name!r} has only {total}{where}"
        )
    perm = gen.permutation(total)
    if stratify:
        chosen = _stratified_mask(dataset.y[perm], sizes["labeled"], dataset.num_classes, gen)
    else:
        chosen = np.arange(total) < sizes["labeled"]
    rest = perm[~chosen]
    ends = np.cumsum([sizes["validation"], sizes["unlabeled"], sizes.get("test", 0)])
    return Splits(
        labeled=perm[chosen],
        validation=rest[: ends[0]],
        unlabeled=rest[ends[0] : ends[1]],
        test=rest[ends[1] : ends[2]] if official_test is None else official_test,
        test_official=official,
        seed=int(rng) if isinstance(rng, numbers.Integral) else None,
        stratified=stratify,
    )
