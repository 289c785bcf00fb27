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
``root`` nor ``ROBUSTDISTILL_DATA`` is given. A malformed IDX file raises :class:`ValueError` naming it.
CIFAR pickles are read with a restricted unpickler that only builds numpy arrays, dtypes and plain
containers: a crafted file raises :class:`pickle.UnpicklingError` instead of running code.

:func:`make_splits` cuts a dataset into disjoint labeled / validation / unlabeled / test index sets.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import inspect
import json
import math
import numbers
import os
import pickle
import random
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
from robustdistill.algorithms.validation import as_numpy, check_int, check_labels, check_rng

__all__ = [
    "DATASETS", "DATA_ENV", "FASHION_MNIST_SYSTEM_DIR", "KINDS", "Dataset", "Splits", "from_arrays",
    "from_torch_dataset", "load_dataset", "make_splits", "read_idx",
]  # fmt: skip

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
                raise ValueError(
                    f"test X rows have shape {X_test.shape[1:]} but X rows have shape {X.shape[1:]}"
                )
            test = (_readonly(X_test), _readonly(y_test))
        if not isinstance(self.info, dict):
            raise TypeError(f"info must be a dict, got {type(self.info).__name__}")
        info = to_jsonable(self.info)
        try:
            json.dumps(info)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"info must be JSON-serialisable: {exc}") from None
        for attr, value in (("X", _readonly(X)), ("y", _readonly(y)), ("num_classes", num_classes),
                            ("test", test), ("info", info)):
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
    highs = []
    for y in labels:
        arr = np.asarray(y)
        if arr.size and np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_):
            highs.append(int(arr.max()))
    if not highs:
        return 2  # nothing to infer from: the label checks report what is wrong with y
    if max(highs) < 1:
        raise ValueError(f"y holds a single class ({max(highs)}); pass num_classes= (at least 2)")
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
            raise TypeError(f"{what} must be a map-style torch Dataset (with __len__ and __getitem__), got "
                            f"{type(ds).__name__}")  # fmt: skip
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
                raise ValueError(f"{what}: float images must lie in [0, 1] (ToTensor's range); pass uint8 pixels "
                                 "and normalise in the model")  # fmt: skip
            X = np.rint(X * 255.0).astype(np.uint8)
        return X, np.asarray(ys, dtype=np.int64)

    X, y = read(dataset, "dataset")
    test_arrays = None if test is None else read(test, "test")
    if X.ndim not in (2, _IMAGE_NDIM):
        raise ValueError(f"dataset items of {X.ndim - 1} dimensions are not supported (1-D features or 3-D images)")
    kind = kind or ("image" if X.ndim == _IMAGE_NDIM else "tabular")
    return from_arrays(X, y, num_classes=num_classes, kind=kind, name=name, test=test_arrays,
                       source=f"torch Dataset {type(dataset).__name__}")


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


def _check_float(value: object, name: str, *, low: float, high: float = math.inf, open_low: bool = True) -> float:
    """A finite real number in (low, high) (``open_low=False``: [low, high))."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} ({value!r})")
    value = float(value)
    inside = (value > low if open_low else value >= low) and value < high
    if not (math.isfinite(value) and inside):
        where = f"{'(' if open_low else '['}{low:g}, {high:g})"
        raise ValueError(f"{name} must be a finite number in {where}, got {value!r}")
    return value


def _check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} ({value!r})")
    return bool(value)


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
        return (np.concatenate([X for X, _ in parts]), np.concatenate([y for _, y in parts]),
                {"available": total})
    if n > total:
        raise ValueError(f"n={n} is larger than the {total} examples available in {what}")
    chosen = np.sort(gen.choice(total, size=n, replace=False))
    bounds = np.searchsorted(chosen, np.cumsum([0, *sizes]))
    offsets = np.cumsum([0, *sizes])
    rows = [chosen[bounds[i]:bounds[i + 1]] - offsets[i] for i in range(len(parts))]
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
    apart (``class_sep`` is the difficulty knob: smaller = harder). ``n`` samples (default 5000)."""
    from sklearn.datasets import make_classification

    n = 5000 if n is None else n
    dim = check_int(dim, "dim", low=1)
    num_classes = check_int(num_classes, "num_classes", low=2)
    informative = max(1, dim // 2) if informative is None else check_int(informative, "informative", low=1, high=dim)
    clusters_per_class = check_int(clusters_per_class, "clusters_per_class", low=1)
    class_sep = _check_float(class_sep, "class_sep", low=0.0)
    if num_classes * clusters_per_class > 2**informative:
        raise ValueError(
            f"num_classes * clusters_per_class = {num_classes * clusters_per_class} must be <= "
            f"2**informative = {2**informative}: raise informative (or dim)"
        )
    seed = _draw_seed(gen)
    X, y = make_classification(
        n_samples=n, n_features=dim, n_informative=informative, n_redundant=0, n_repeated=0,
        n_classes=num_classes, n_clusters_per_class=clusters_per_class, class_sep=class_sep,
        flip_y=0.0, shuffle=True, random_state=seed,
    )
    options = {"dim": dim, "num_classes": num_classes, "class_sep": class_sep, "informative": informative,
               "clusters_per_class": clusters_per_class}
    info = {"source": "sklearn.datasets.make_classification", "version": metadata.version("scikit-learn"),
            "options": options, "random_state": seed, "available": n}
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
    from mnist1d.data import get_dataset_args, make_dataset

    n = 5000 if n is None else n
    if n % 10:
        raise ValueError(f"n must be a multiple of 10 for mnist1d (balanced over its 10 classes), got {n}")
    args = get_dataset_args()
    overrides = {
        "train_split": None if train_split is None else _check_float(train_split, "train_split", low=0.0, high=1.0),
        "iid_noise_scale": None if iid_noise_scale is None
        else _check_float(iid_noise_scale, "iid_noise_scale", low=0.0, open_low=False),
        "corr_noise_scale": None if corr_noise_scale is None
        else _check_float(corr_noise_scale, "corr_noise_scale", low=0.0, open_low=False),
        "shuffle_seq": None if shuffle_seq is None else _check_bool(shuffle_seq, "shuffle_seq"),
    }
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
    info = {"source": "mnist1d.data.make_dataset", "version": metadata.version("mnist1d"), "args": used,
            "random_state": args.seed, "available": n_train}
    return _Loaded(data["x"], data["y"], (data["x_test"], data["y_test"]), 10, "sequence", info)


# ------------------------------------------------------------------------------------- image formats


def _pickle_bytes(*args: object) -> bytes:
    """``bytes()`` as protocol-2 pickles write an empty ``bytes`` (nothing else is allowed)."""
    if args:
        raise pickle.UnpicklingError("refusing bytes(...) with arguments in a pickle")
    return b""


def _pickle_latin1(text: object, encoding: str = "latin1") -> bytes:
    """``_codecs.encode(text, "latin1")`` as protocol-2 pickles write ``bytes``; no other codec."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r} in a pickle")
    return text.encode("latin1")


_RECONSTRUCT = np.empty(0).__reduce__()[0]  # numpy's array reconstructor, whatever its module is called
_SCALAR = np.int64(0).__reduce__()[0]
#: The only globals a CIFAR pickle may name: numpy arrays/dtypes/scalars (numpy 1 and 2 module names) and
#: the two ways protocol 2 spells bytes. Containers, ints and strings need no global.
_PICKLE_ALLOWED: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _RECONSTRUCT for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _SCALAR for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _pickle_latin1,
    ("builtins", "bytes"): _pickle_bytes,
    ("__builtin__", "bytes"): _pickle_bytes,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`_PICKLE_ALLOWED`; any other global (``os.system``,
    ``builtins.eval``, a class with a malicious ``__reduce__``...) raises :class:`pickle.UnpicklingError`
    before anything is called."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _PICKLE_ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: only numpy arrays and plain containers are "
                "allowed in a dataset pickle (a crafted file could otherwise run code)"
            ) from None


def _load_pickle(path: Path) -> Any:
    """Unpickle ``path`` (``encoding="bytes"``, as written by Python 2) with :class:`_RestrictedUnpickler`."""
    with open(path, "rb") as fh:
        try:
            return _RestrictedUnpickler(fh, encoding="bytes").load()
        except pickle.UnpicklingError as exc:
            raise pickle.UnpicklingError(f"{path}: {exc}") from None


def _planes_to_nchw(data: object, size: int, path: Path) -> np.ndarray:
    """Rows of channel planes (m, 3*size*size) uint8 (R plane, G plane, B plane, each row-major) to
    (m, 3, size, size) uint8 (a view, no copy)."""
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * size * size:
        got = f"shape {data.shape} dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: expected image rows of shape (m, {3 * size * size}) uint8, got {got}")
    return data.reshape(-1, 3, size, size)


def _label_vector(labels: object, m: int, path: Path) -> np.ndarray:
    """Labels read from a file as (m,) int64 (integer, or integral floats as MATLAB stores them)."""
    arr = np.asarray(labels).reshape(-1)
    if arr.shape[0] != m or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ValueError(f"{path}: expected {m} numeric labels, got {arr.shape[0]} of dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer) and not np.array_equal(arr, np.round(arr)):
        raise ValueError(f"{path}: labels must be integers")
    return arr.astype(np.int64)


def _read_cifar_pickle(path: Path, *, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR python batch: a pickled dict with b"data" (m, 3072) uint8 and ``label_key`` (m ints).
    Returns (X (m, 3, 32, 32) uint8, y (m,) int64)."""
    batch = _load_pickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{path}: not a CIFAR batch: expected a dict with keys b'data' and {label_key!r}, got {keys}")
    X = _planes_to_nchw(batch[b"data"], 32, path)
    return X, _label_vector(batch[label_key], X.shape[0], path)


def _read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN ``*_32x32.mat``: X (32, 32, 3, m) uint8 and y (m, 1) in 1..10 (10 = digit 0).
    Returns (X (m, 3, 32, 32) uint8, y (m,) int64 in 0..9)."""
    from scipy.io import loadmat

    mat = loadmat(path, variable_names=("X", "y"))
    if "X" not in mat or "y" not in mat:
        raise ValueError(f"{path}: not an SVHN file: expected variables X and y, got {sorted(mat)}")
    images = mat["X"]
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise ValueError(f"{path}: expected X of shape (32, 32, 3, m) uint8, got {images.shape} {images.dtype}")
    y = _label_vector(mat["y"], images.shape[3], path)
    if y.size and (y.min() < 1 or y.max() > 10):
        raise ValueError(f"{path}: SVHN labels must lie in 1..10, found [{y.min()}, {y.max()}]")
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)), np.where(y == 10, 0, y)


def _read_imagenet_npz(path: Path, *, size: int) -> tuple[np.ndarray, np.ndarray]:
    """One downsampled-ImageNet batch: npz with "data" (m, 3*size*size) uint8 channel planes and "labels"
    in 1..1000. Returns (X (m, 3, size, size) uint8, y (m,) int64 in 0..999)."""
    with np.load(path, allow_pickle=False) as npz:
        if "data" not in npz.files or "labels" not in npz.files:
            raise ValueError(f"{path}: expected arrays 'data' and 'labels', got {npz.files}")
        X = _planes_to_nchw(npz["data"], size, path)
        return X, _label_vector(npz["labels"], X.shape[0], path) - 1


#: IDX type codes (the third byte of the magic number); only unsigned bytes are read.
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int", 0x0D: "float",
              0x0E: "double"}
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
        raise ValueError(f"{path}: corrupt gzip stream ({exc})") from None


def _idx_shape(data: bytes, path: Path, ndim: int | None) -> tuple[int, ...]:
    """Check an IDX header (two zero bytes, type code 0x08, the number of dimensions, then that many big-endian
    uint32 sizes) and that exactly the promised bytes follow it. Returns the array's shape."""
    if len(data) < 4:
        raise ValueError(f"{path}: not an IDX file: {len(data)} bytes, shorter than the 4-byte magic number")
    if data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file: wrong magic number 0x{data[:4].hex()} (it must start with "
                         "two zero bytes)")  # fmt: skip
    code, dims = data[2], data[3]
    if code != _IDX_UBYTE:
        kind = _IDX_TYPES.get(code, "unknown")
        raise ValueError(f"{path}: IDX type code 0x{code:02x} ({kind}) is not supported; only 0x08 (unsigned byte)")
    if dims == 0 or (ndim is not None and dims != ndim):
        wanted = "at least 1" if ndim is None else str(ndim)
        raise ValueError(f"{path}: wrong IDX magic number 0x{data[:4].hex()}: {dims} dimensions, expected {wanted}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX file: {len(data)} bytes, the header of {dims} sizes needs {header}")
    shape = tuple(int(size) for size in np.frombuffer(data, dtype=">u4", count=dims, offset=4))
    promised, present = math.prod(shape), len(data) - header
    if present < promised:
        raise ValueError(f"{path}: truncated IDX file: shape {shape} needs {promised} data bytes, found {present}")
    if present > promised:
        raise ValueError(f"{path}: {present - promised} trailing bytes after the {promised} data bytes of shape "
                         f"{shape}")  # fmt: skip
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
    """
    path = Path(path)
    data = _read_maybe_gzipped(path)
    shape = _idx_shape(data, path, ndim)
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
    "cifar10": _ImageSource("cifar10", "cifar-10-batches-py",
                            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": _ImageSource("cifar100", "cifar-100-python",
                             "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
    "svhn": _ImageSource("svhn", "svhn", "http://ufldl.stanford.edu/housenumbers/ (format 2, *_32x32.mat)"),
    "imagenet32": _ImageSource("imagenet32", "Imagenet32_train_npz",
                               "https://image-net.org/download-images (Downsampled ImageNet 32x32, npz)"),
    "imagenet64": _ImageSource("imagenet64", "Imagenet64_train_part1_npz",
                               "https://image-net.org/download-images (Downsampled ImageNet 64x64, npz)"),
    "fashion_mnist": _ImageSource(
        "fashionmnist", "fashion-mnist", "https://github.com/zalandoresearch/fashion-mnist (data/fashion/*.gz)",
        hint="Or install the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist; its "
             "files go to /usr/share/datasets/fashion-mnist, read when neither root= nor "
             f"{DATA_ENV} is given), or pass root=... (the folder holding the files).",
    ),
    "mnist": _ImageSource("mnist", "mnist", "http://yann.lecun.com/exdb/mnist/ (or one of its mirrors)",
                          exclude=("fashion", "kmnist", "emnist", "qmnist")),
    "kmnist": _ImageSource("kmnist", "kmnist",
                           "https://github.com/rois-codh/kmnist (Kuzushiji-MNIST, the MNIST-format .gz files)"),
}

#: The four IDX files of an MNIST-format set (train images and labels, then the test split), in that order.
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
              "t10k-labels-idx1-ubyte")


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
        folders += sorted(d for d in root.iterdir() if d.is_dir() and source.token in _normalised(d.name)
                          and not any(token in _normalised(d.name) for token in source.exclude))
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
    info = {"source": _IMAGE_SOURCES[name].url, "root": str(folder),
            "files": [str(paths[f]) for f in (*train, *test)], "options": options, **rows}
    return _Loaded(X, y, (X_test, y_test), num_classes, "image", info)


def _load_cifar10(*, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None) -> _Loaded:
    """CIFAR-10 python version: ``data_batch_1`` .. ``data_batch_5`` (train) and ``test_batch``."""
    train = [f"data_batch_{i}" for i in range(1, 6)]
    read = partial(_read_cifar_pickle, label_key=b"labels")
    return _load_images("cifar10", root, train, ["test_batch"], read, 10, n=n, gen=gen, options={})


def _load_cifar100(
    *, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None, label_mode: str = "fine"
) -> _Loaded:
    """CIFAR-100 python version: ``train`` and ``test``; ``label_mode`` "fine" (100 classes) or "coarse" (20)."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f"label_mode must be 'fine' or 'coarse', got {label_mode!r}")
    read = partial(_read_cifar_pickle, label_key=f"{label_mode}_labels".encode())
    num_classes = 100 if label_mode == "fine" else 20
    return _load_images("cifar100", root, ["train"], ["test"], read, num_classes, n=n, gen=gen,
                        options={"label_mode": label_mode})


def _load_svhn(
    *, n: int | None, gen: np.random.Generator, root: str | os.PathLike[str] | None, extra: bool = False
) -> _Loaded:
    """SVHN format 2: ``train_32x32.mat`` (+ ``extra_32x32.mat`` with ``extra=True``) and ``test_32x32.mat``."""
    extra = _check_bool(extra, "extra")
    train = ["train_32x32.mat", "extra_32x32.mat"] if extra else ["train_32x32.mat"]
    return _load_images("svhn", root, train, ["test_32x32.mat"], _read_svhn_mat, 10, n=n, gen=gen,
                        options={"extra": extra})


def _check_batches(batches: object) -> list[int]:
    """ImageNet train batch numbers: None (all of 1..10) or distinct ints in 1..10."""
    if batches is None:
        return list(range(1, 11))
    if isinstance(batches, (str, bytes)) or not isinstance(batches, Sequence):
        raise TypeError(f"batches must be a sequence of ints in 1..10 or None, got {type(batches).__name__}")
    chosen = [check_int(b, "batches", low=1, high=10) for b in batches]
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(f"batches must be distinct ints in 1..10 (at least one), got {list(batches)}")
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
    return _load_images(f"imagenet{size}", root, train, ["val_data.npz"], read, 1000, n=n, gen=gen,
                        options={"batches": chosen})


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
    info = {"source": _IMAGE_SOURCES[name].url, "root": str(folder), "files": [str(paths[f]) for f in _IDX_FILES],
            "options": {}, **rows}
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
            (smaller = harder), ``informative=dim//2``, ``clusters_per_class=1``; ``mnist1d``:
            ``train_split``, ``iid_noise_scale``, ``corr_noise_scale``, ``shuffle_seq`` (default: the
            package's); ``cifar100``: ``label_mode="fine"|"coarse"``; ``svhn``: ``extra=False``;
            ``imagenet32``/``imagenet64``: ``batches=None`` (train batch numbers in 1..10).

    Returns:
        A validated :class:`Dataset` (see its shapes); ``info`` records the source, files, options, the
        subset, the seeds drawn for third-party generators and ``rng`` when it was an int.

    Raises:
        ValueError: unknown name or option, bad option values, ``n`` larger than the data, no ``root``; a
            malformed IDX file (named in the message).
        FileNotFoundError: an image set's folder or files are missing (the message lists what is expected
            where).
        pickle.UnpicklingError: a CIFAR file names anything but numpy arrays and plain containers.
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
        n = check_int(n, "n", low=1)
    loaded = loader(n=n, gen=gen, root=root, **options)
    seed = int(rng) if isinstance(rng, numbers.Integral) else None
    return Dataset(name=name, X=loaded.X, y=loaded.y, num_classes=loaded.num_classes, kind=loaded.kind,
                   test=loaded.test, info={**loaded.info, "rng": seed})


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
        return {"sizes": self.sizes(), "seed": self.seed, "test_official": self.test_official,
                "stratified": self.stratified, "digest": self.digest()}


def _resolve_size(value: object, name: str, total: int) -> int:
    """A split size: an int count >= 0, or a float fraction in (0, 1) of ``total`` rounded down (>= 1)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an int count or a float fraction in (0, 1), got {type(value).__name__}")
    if isinstance(value, numbers.Integral):
        return check_int(value, name, low=0)
    fraction = float(value)
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"{name} as a fraction must lie in (0, 1), got {value!r} (pass an int for a count)")
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
    stratify = _check_bool(stratify, "stratify")
    gen = check_rng(rng)
    total = int(dataset.y.shape[0])
    sizes = {key: _resolve_size(value, key, total)
             for key, value in (("labeled", labeled), ("validation", validation), ("unlabeled", unlabeled))}
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
        unlabeled=rest[ends[0]: ends[1]],
        test=rest[ends[1]: ends[2]] if official_test is None else official_test,
        test_official=official,
        seed=int(rng) if isinstance(rng, numbers.Integral) else None,
        stratified=stratify,
    )
