"""Damaged and crafted dataset files, and out-of-range ``load_dataset`` options.

Every reader (CIFAR-10/100 pickles, SVHN MAT-files, ImageNet npz archives, IDX files) turns a file it cannot
read into one ``ValueError`` naming the file: never a library's exception, a huge allocation or a crash.
Every numeric option refuses huge, non-finite, boolean and string values with an error naming it, before
any work. The valid files are the tiny ones of ``test_data`` and ``idx_files``, written into ``tmp_path``.
"""

from __future__ import annotations

import io
import math
import pickle
import struct
import time
import zipfile
import zlib
from fractions import Fraction

import numpy as np
import pytest
import scipy.io
from idx_files import TRAIN_IMAGES, TRAIN_LABELS, write_set
from test_data import (
    _cifar_batch,
    _Payload,
    _write_cifar10,
    _write_imagenet,
    _write_pickle,
    _write_svhn,
)

from robustdistill.experiments.pipeline import data as data_module
from robustdistill.experiments.pipeline.data import (
    DATASETS,
    from_arrays,
    load_dataset,
    make_splits,
    read_idx,
)

# numpy's array reconstructor, pickled under its own name
_RECONSTRUCT = np.empty(0).__reduce__()[0]
_FAST = 2.0  # seconds: a refusal must not attempt what a file or an option declares


class _Built(_Payload):
    """Pickles as ``func(*args)`` followed by ``__setstate__(state)`` (the BUILD opcode)."""

    def __init__(self, func, args, state):
        super().__init__(func, *args)
        self.state = state

    def __reduce__(self):
        return self.func, self.args, self.state


# ---------------------------------------------------------------------------------- the valid sets


def _cifar10(tmp_path):
    _write_cifar10(tmp_path / "cifar-10-batches-py", m=1)
    return tmp_path / "cifar-10-batches-py" / "data_batch_2", {}


def _cifar100(tmp_path):
    folder = tmp_path / "cifar-100-python"
    _write_pickle(
        folder / "train",
        _cifar_batch(1, {b"fine_labels": [99], b"coarse_labels": [19]}),
    )
    _write_pickle(folder / "test", _cifar_batch(1, {b"fine_labels": [7], b"coarse_labels": [3]}))
    return folder / "train", {"label_mode": "coarse"}


def _svhn(tmp_path, *, compressed=False):
    folder = tmp_path / "svhn"
    _write_svhn(folder / "train_32x32.mat", [10])
    _write_svhn(folder / "test_32x32.mat", [3, 10])
    if compressed:
        mat = scipy.io.loadmat(folder / "test_32x32.mat")
        scipy.io.savemat(
            folder / "test_32x32.mat",
            {"X": mat["X"], "y": mat["y"]},
            do_compression=True,
        )
    return folder / "test_32x32.mat", {}


def _imagenet(tmp_path, *, compressed=False):
    _write_imagenet(tmp_path, 32, m=2)
    target = tmp_path / "Imagenet32_train_npz" / "train_data_batch_2.npz"
    if compressed:
        with np.load(target) as npz:
            arrays = {key: npz[key] for key in npz.files}
        np.savez_compressed(target, **arrays)
    return target, {"batches": [2]}


def _idx(tmp_path, *, gz=False):
    write_set(tmp_path, m=2, m_test=1, height=3, width=4, gz=gz)
    return tmp_path / (f"{TRAIN_LABELS}.gz" if gz else TRAIN_IMAGES), {}


#: set name: (dataset, writer of a valid set returning (the file to damage, load_dataset options))
SETS = {
    "cifar10": ("cifar10", _cifar10),
    "cifar100": ("cifar100", _cifar100),
    "svhn": ("svhn", _svhn),
    "svhn compressed": ("svhn", lambda tmp_path: _svhn(tmp_path, compressed=True)),
    "imagenet32": ("imagenet32", _imagenet),
    "imagenet32 compressed": (
        "imagenet32",
        lambda tmp_path: _imagenet(tmp_path, compressed=True),
    ),
    "mnist": ("mnist", _idx),
    "mnist gzipped": ("mnist", lambda tmp_path: _idx(tmp_path, gz=True)),
}


def _load_or_name(name, tmp_path, target, options, label):
    """Load the set; a refusal must be a ValueError naming ``target``. Returns whether it was refused."""
    start = time.perf_counter()
    try:
        load_dataset(name, root=tmp_path, **options)
    except ValueError as exc:
        assert str(target) in str(exc), f"{label}: the message does not name the file: {exc}"
        refused = True
    except Exception as exc:  # noqa: BLE001 - reported with the variant that raised it
        pytest.fail(f"{label}: {type(exc).__name__} instead of a ValueError naming the file: {exc}")
    else:
        refused = False
    assert time.perf_counter() - start < _FAST, f"{label}: took {time.perf_counter() - start:.1f} s"
    return refused


def _variants(raw: bytes):
    """(label, bytes): empty, text, truncations at many lengths, and single bytes inverted or zeroed, densely
    near the start and the end (headers, tags, pickle opcodes) and sparsely in between (pixels)."""
    yield "empty", b""
    yield "text", b"this is not a dataset file, just some text\n" * 4
    cuts = {
        *range(0, min(len(raw), 48), 3),
        *(len(raw) * k // 20 for k in range(1, 20)),
        len(raw) - 1,
    }
    for cut in sorted(cuts):
        yield f"truncated to {cut} of {len(raw)} bytes", raw[:cut]
    positions = {
        *range(min(len(raw), 200)),
        *range(max(0, len(raw) - 64), len(raw)),
        *range(0, len(raw), 97),
    }
    for pos in sorted(positions):
        for value in sorted({raw[pos] ^ 0xFF, 0}):
            if value != raw[pos]:
                yield (
                    f"byte {pos} set to {value:#04x}",
                    raw[:pos] + bytes([value]) + raw[pos + 1 :],
                )


@pytest.mark.parametrize("case", sorted(SETS))
def test_damaged_files_raise_a_value_error_naming_the_file(tmp_path, case):
    name, write = SETS[case]
    target, options = write(tmp_path)
    raw = target.read_bytes()
    assert not _load_or_name(name, tmp_path, target, options, "the valid file")
    refused = {}
    for label, content in _variants(raw):
        target.write_bytes(content)
        refused[label] = _load_or_name(name, tmp_path, target, options, label)
    assert refused["empty"] and refused["text"] and refused[f"truncated to {len(raw) - 1} of {len(raw)} bytes"]
    # the damage was seen, not only in pixels
    assert sum(refused.values()) > len(refused) // 10


# ---------------------------------------------------------------------------- wrong structures


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


STRUCTURES = {
    # case: (set, the damaged file's content, expected message)
    "cifar mixed keys": (
        "cifar10",
        lambda: pickle.dumps({1: 2, "a": 3}, protocol=2),
        "not a CIFAR batch: expected a dict with keys b'data' and b'labels', got",
    ),
    "cifar label range": (
        "cifar10",
        lambda: pickle.dumps(_cifar_batch(1, {b"labels": [10]}), protocol=2),
        r"labels must lie in 0\.\.9, found \[10, 10\]",
    ),
    "cifar infinite label": (
        "cifar10",
        lambda: pickle.dumps(_cifar_batch(1, {b"labels": [math.inf]}), protocol=2),
        "labels must be integers",
    ),
    "npz object labels": (
        "imagenet32",
        lambda: _npz_bytes(data=np.zeros((1, 3072), np.uint8), labels=np.array([{}], dtype=object)),
        r"labels: its header declares shape \(1,\) of object",
    ),
    "npz plain npy": (
        "imagenet32",
        lambda: b"\x93NUMPY\x01\x00" + b" " * 118 + b"\n",
        "not a valid npz archive",
    ),
    "mat v7.3": (
        "svhn",
        lambda: b"MATLAB 7.3 MAT-file".ljust(512, b"\0"),
        "not a level-5 MAT-file",
    ),
}
TARGETS = {"cifar10": _cifar10, "imagenet32": _imagenet, "svhn": _svhn}


@pytest.mark.parametrize("case", sorted(STRUCTURES))
def test_files_of_the_wrong_structure_are_named(tmp_path, case):
    name, content, match = STRUCTURES[case]
    target, options = TARGETS[name](tmp_path)
    target.write_bytes(content())
    with pytest.raises(ValueError, match=match) as info:
        load_dataset(name, root=tmp_path, **options)
    assert str(target) in str(info.value)


def test_a_missing_file_stays_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "absent")
    with pytest.raises(FileNotFoundError):
        data_module._read_svhn_mat(tmp_path / "absent.mat")


# ---------------------------------------------------------------------------------- crafted files


def _dtype_claiming_objects():
    """A uint8 dtype whose pickled state sets the flags that say it holds Python objects."""
    return _Built(np.dtype, ("u1", False, True), (3, "|", None, None, None, -1, -1, 63))


CRAFTED_PICKLES = {
    # case: (the pickle's bytes, expected message): each one asks for memory it does not hold, or lies
    "1 TiB array": (
        lambda: pickle.dumps(_Payload(_RECONSTRUCT, np.ndarray, (2**40,), b"b"), protocol=2),
        "refusing _reconstruct with shape",
    ),
    "ndarray called": (
        lambda: pickle.dumps(_Payload(np.ndarray, (2**40,)), protocol=2),
        "not a valid CIFAR batch",
    ),
    "object array state": (
        lambda: pickle.dumps(
            _Built(
                _RECONSTRUCT,
                (np.ndarray, (0,), b"b"),
                (1, (2**37,), np.dtype(object), False, []),
            ),
            protocol=2,
        ),
        "refusing dtype '\\|O'",
    ),
    "declared shape": (
        lambda: pickle.dumps(
            {
                b"data": _Built(
                    _RECONSTRUCT,
                    (np.ndarray, (0,), b"b"),
                    (1, (10000, 3072), np.dtype(np.uint8), False, b"abc"),
                ),
                b"labels": [0],
            },
            protocol=2,
        ),
        r"shape \(10000, 3072\) and dtype uint8 \(30720000 bytes\) made from 3 bytes",
    ),
    "dtype flags": (
        lambda: pickle.dumps(
            _Built(
                _RECONSTRUCT,
                (np.ndarray, (0,), b"b"),
                (1, (2,), _dtype_claiming_objects(), False, b"\0\0"),
            ),
            protocol=2,
        ),
        "refusing dtype",
    ),
    "void scalar": (
        lambda: pickle.dumps(np.void(b"\0" * 8), protocol=2),
        "refusing dtype '\\|V8'",
    ),
    "memo index": (
        lambda: b"\x80\x02}r\xf0\xff\xff\xff.",
        "refusing memo index 4294967280",
    ),
    "bytes length": (
        lambda: b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc.",
        "not a valid CIFAR batch",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_PICKLES))
def test_crafted_pickles_are_refused_before_allocating(tmp_path, case):
    content, match = CRAFTED_PICKLES[case]
    target, _ = _cifar10(tmp_path)
    payload = content()
    assert len(payload) < 300
    target.write_bytes(payload)
    start = time.perf_counter()
    # a small file is refused: no MemoryError, no crash
    with pytest.raises(ValueError, match=match) as info:
        load_dataset("cifar10", root=tmp_path)
    assert time.perf_counter() - start < _FAST
    assert str(target) in str(info.value)


def test_refused_globals_are_unpickling_errors_too(tmp_path):
    target, _ = _cifar10(tmp_path)
    target.write_bytes(pickle.dumps(_Payload(print, "hi"), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global .*print") as info:
        load_dataset("cifar10", root=tmp_path)
    assert isinstance(info.value, ValueError) and str(target) in str(info.value)


def _npz_lying_about(shape, extra: int = 0) -> bytes:
    """An npz whose data.npy header declares uint8 ``shape`` over three bytes of data; ``extra`` is added to the
    uncompressed size the zip directory declares for it."""
    header, labels = io.BytesIO(), io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False, "shape": shape})
    np.save(labels, np.array([1]))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.npy", header.getvalue() + b"abc")
        archive.writestr("labels.npy", labels.getvalue())
    raw = bytearray(buffer.getvalue())
    if extra:
        # the central directory entry of data.npy, its uncompressed size at offset 24
        directory = raw.index(b"PK\x01\x02")
        size = struct.unpack_from("<I", raw, directory + 24)[0]
        struct.pack_into("<I", raw, directory + 24, size + extra)
    return bytes(raw)


def _mat_array_element(name: bytes, mx_class: int, dims, flags: int = 0, data: bytes = b"") -> bytes:
    """One level-5 MAT array element: flags, dimensions, name and (when given) a uint8 data element."""

    def element(kind, payload):
        return struct.pack("<II", kind, len(payload)) + payload + b"\0" * (-len(payload) % 8)

    header = struct.pack("<II", mx_class | flags << 8, 0)
    body = element(6, header) + element(5, struct.pack(f"<{len(dims)}i", *dims))
    body += element(1, name) + (element(2, data) if data else b"")
    return struct.pack("<II", 14, len(body)) + body


def _mat_file(*elements: bytes) -> bytes:
    return b"MATLAB 5.0 MAT-file, crafted".ljust(124, b" ") + b"\x00\x01IM" + b"".join(elements)


def _compressed_claiming(size: int) -> bytes:
    """A compressed MAT element whose inner tag declares ``size`` bytes over 16 zero bytes."""
    stream = zlib.compress(struct.pack("<II", 14, size) + b"\0" * 16)
    return struct.pack("<II", 15, len(stream)) + stream


CRAFTED_FILES = {
    # case: (set, the file's bytes, expected message)
    "npz header shape": (
        "imagenet32",
        lambda: _npz_lying_about((2**40,)),
        r"data: its header declares shape \(1099511627776,\)",
    ),
    "npz member size": (
        "imagenet32",
        lambda: _npz_lying_about((2**31,), extra=2**31 - 3),
        "cannot be in a .*-byte npz archive",
    ),
    "mat cell of 2**40": (
        "svhn",
        lambda: _mat_file(
            _mat_array_element(b"X", 1, (2**20, 2**20)),
            _mat_array_element(b"y", 9, (1, 1), data=b"\x01"),
        ),
        "expected numeric variables X and y",
    ),
    "mat complex flag": (
        "svhn",
        lambda: _mat_file(
            _mat_array_element(b"X", 9, (32, 32, 3, 1), flags=0x08, data=bytes(3072)),
            _mat_array_element(b"y", 9, (1, 1), data=b"\x01"),
        ),
        "expected numeric variables X and y",
    ),
    "mat data short": (
        "svhn",
        lambda: _mat_file(_mat_array_element(b"X", 9, (32, 32, 3, 2**20), data=bytes(8))),
        r"X: a uint8 array of shape \(32, 32, 3, 1048576\) cannot be read from 8 bytes",
    ),
    "mat compressed size": (
        "svhn",
        lambda: _mat_file(_compressed_claiming(2**32 - 9)),
        "declares 4294967295 bytes, its stream holds 24",
    ),
}


@pytest.mark.parametrize("case", sorted(CRAFTED_FILES))
def test_crafted_sizes_are_checked_before_allocating(tmp_path, case):
    name, content, match = CRAFTED_FILES[case]
    target, options = TARGETS[name](tmp_path)
    target.write_bytes(content())
    start = time.perf_counter()
    with pytest.raises(ValueError, match=match) as info:
        load_dataset(name, root=tmp_path, **options)
    assert time.perf_counter() - start < _FAST
    assert str(target) in str(info.value)


# ---------------------------------------------------------------------------------------- options


BAD_NUMBERS = [
    10**400,
    10**5000,
    2**63,
    -(2**63),
    1e308,
    math.nan,
    math.inf,
    -math.inf,
    Fraction(10**400),
    "3",
    True,
    np.bool_(False),
]
#: the options that are not numbers; every other option of every set must refuse all of BAD_NUMBERS
OTHER_OPTIONS = {
    "mnist1d": ("shuffle_seq",),
    "cifar100": ("label_mode",),
    "svhn": ("extra",),
    "imagenet32": ("batches",),
    "imagenet64": ("batches",),
}
NUMERIC_OPTIONS = [
    (name, option)
    for name in DATASETS
    for option in data_module._options_of(data_module._LOADERS[name])
    if option not in OTHER_OPTIONS.get(name, ())
]


def _refused_naming(option, call, *args, **kwargs):
    """``call(*args, **kwargs)`` raises, quickly, a ValueError or TypeError whose message starts with ``option``."""
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError)) as info:
        call(*args, **kwargs)
    assert time.perf_counter() - start < _FAST, f"{option}: took {time.perf_counter() - start:.1f} s"
    assert str(info.value).startswith(f"{option} "), f"{option}: the message does not name it: {info.value}"


@pytest.mark.parametrize(("name", "option"), NUMERIC_OPTIONS)
def test_numeric_options_refuse_huge_non_finite_and_non_numbers(name, option):
    for value in BAD_NUMBERS:
        _refused_naming(option, load_dataset, name, n=100, rng=0, **{option: value})


@pytest.mark.parametrize("name", DATASETS)
def test_n_refuses_huge_non_finite_and_non_numbers(tmp_path, name):
    for value in [*BAD_NUMBERS, 10**12, 0]:
        _refused_naming("n", load_dataset, name, root=tmp_path, n=value, rng=0)


def test_generated_sets_refuse_sizes_they_cannot_hold():
    with pytest.raises(
        ValueError,
        match=r"n=10000000 rows x 20 features = 200000000 values is more than",
    ):
        load_dataset("gaussian_mixture", n=10**7, rng=0)
    with pytest.raises(ValueError, match=r"n=2000 rows x 100000 features"):
        load_dataset("gaussian_mixture", n=2000, dim=10**5, rng=0)
    with pytest.raises(ValueError, match="num_classes \\* clusters_per_class = 150 is more than n=100"):
        load_dataset("gaussian_mixture", n=100, num_classes=50, clusters_per_class=3, rng=0)
    with pytest.raises(ValueError, match=r"must be <= 2\*\*informative = 2\*\*2"):
        load_dataset("gaussian_mixture", n=100, dim=4, informative=2, num_classes=5, rng=0)
    with pytest.raises(ValueError, match="n=10000000 rows x 40 features"):
        load_dataset("mnist1d", n=10**7, rng=0)


@pytest.mark.parametrize(
    ("name", "option"),
    [(name, opt) for name, opts in OTHER_OPTIONS.items() for opt in opts],
)
def test_flags_modes_and_batches_refuse_numbers(tmp_path, name, option):
    values = [v for v in BAD_NUMBERS if not isinstance(v, (bool, np.bool_))]
    if option == "batches":
        values = [[v] for v in BAD_NUMBERS] + [10**400, "1", [1, 1], []]
    for value in values:
        _refused_naming(option, load_dataset, name, root=tmp_path, **{option: value})


@pytest.mark.parametrize("size", ["labeled", "validation", "unlabeled", "test"])
def test_split_sizes_refuse_huge_non_finite_and_non_numbers(size):
    ds = from_arrays(np.zeros((50, 2)), np.arange(50) % 2)
    for value in BAD_NUMBERS:
        sizes = {"labeled": 1, "validation": 1, "unlabeled": 1, "test": 1, size: value}
        _refused_naming(size, make_splits, ds, rng=0, **sizes)
