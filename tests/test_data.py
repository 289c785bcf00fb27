"""Datasets: bundled and generated sets, image folders in each on-disk format, the restricted unpickler,
user arrays and splits. Everything runs offline on tiny files written into ``tmp_path``."""

from __future__ import annotations

import json
import os
import pickle
import random

import numpy as np
import pytest
import scipy.io

from robustdistill.experiments.pipeline.data import (
    DATA_ENV,
    DATASETS,
    Dataset,
    from_arrays,
    load_dataset,
    make_splits,
)

SKLEARN_SETS = {"digits": (1797, 64, 10), "wine": (178, 13, 3), "breast_cancer": (569, 30, 2), "iris": (150, 4, 3)}


# ------------------------------------------------------------------------------ bundled and generated sets


@pytest.mark.parametrize("name", sorted(SKLEARN_SETS))
def test_sklearn_sets_load_raw_float32_features(name):
    n, d, k = SKLEARN_SETS[name]
    ds = load_dataset(name)
    assert (ds.X.shape, ds.X.dtype, ds.y.shape, ds.y.dtype) == ((n, d), np.float32, (n,), np.int64)
    assert ds.num_classes == k and ds.kind == "tabular" and ds.test is None
    assert set(np.unique(ds.y)) == set(range(k))
    assert not ds.X.flags.writeable and not ds.y.flags.writeable


def test_sklearn_cap_is_a_seeded_subset_without_replacement():
    full = load_dataset("iris")
    a, b, c = (load_dataset("iris", n=40, rng=seed) for seed in (3, 3, 4))
    assert a.X.shape == (40, 4) and a.info["subset"] == 40 and a.info["available"] == 150 and a.info["rng"] == 3
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.array_equal(a.X, c.X)
    rows = {tuple(r) for r in full.X.tolist()}
    assert all(tuple(r) in rows for r in a.X.tolist())
    with pytest.raises(ValueError, match="n=151 is larger than the 150 examples"):
        load_dataset("iris", n=151, rng=0)


def test_gaussian_mixture_shapes_options_and_seeds():
    ds = load_dataset("gaussian_mixture", n=300, rng=0, dim=6, num_classes=3, class_sep=2.0)
    assert (ds.X.shape, ds.X.dtype, ds.y.dtype, ds.num_classes) == ((300, 6), np.float32, np.int64, 3)
    assert set(np.unique(ds.y)) == {0, 1, 2}
    assert ds.info["options"]["informative"] == 3 and isinstance(ds.info["random_state"], int)
    assert load_dataset("gaussian_mixture", rng=1).X.shape == (5000, 20)
    same = load_dataset("gaussian_mixture", n=300, rng=0, dim=6, num_classes=3, class_sep=2.0)
    other = load_dataset("gaussian_mixture", n=300, rng=1, dim=6, num_classes=3, class_sep=2.0)
    np.testing.assert_array_equal(ds.X, same.X)
    np.testing.assert_array_equal(ds.y, same.y)
    assert not np.array_equal(ds.X, other.X)
    # a Generator is used as given (and advanced)
    gen = np.random.default_rng(5)
    assert not np.array_equal(load_dataset("iris", n=10, rng=gen).X, load_dataset("iris", n=10, rng=gen).X)


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"class_sep": 0.0}, ValueError, "class_sep"),
        ({"class_sep": "1"}, TypeError, "class_sep"),
        ({"dim": 4, "informative": 5}, ValueError, "informative"),
        ({"dim": 2, "num_classes": 5}, ValueError, "2\\*\\*informative"),
        ({"num_classes": 1}, ValueError, "num_classes"),
    ],
)
def test_gaussian_mixture_rejects_bad_options(options, error, match):
    with pytest.raises(error, match=match):
        load_dataset("gaussian_mixture", n=50, rng=0, **options)


def test_mnist1d_generates_offline_and_restores_global_rngs():
    np_before, py_before = np.random.get_state(), random.getstate()
    ds = load_dataset("mnist1d", n=100, rng=7)
    np_after, py_after = np.random.get_state(), random.getstate()
    assert np_before[0] == np_after[0] and np.array_equal(np_before[1], np_after[1])
    assert np_before[2:] == np_after[2:] and py_before == py_after
    assert (ds.X.shape, ds.X.dtype, ds.y.dtype, ds.kind, ds.num_classes) == (
        (80, 40),
        np.float32,
        np.int64,
        "sequence",
        10,
    )
    X_test, y_test = ds.test
    assert X_test.shape == (20, 40) and X_test.dtype == np.float32 and y_test.shape == (20,)
    again, other = load_dataset("mnist1d", n=100, rng=7), load_dataset("mnist1d", n=100, rng=8)
    np.testing.assert_array_equal(ds.X, again.X)
    np.testing.assert_array_equal(ds.test[1], again.test[1])
    assert not np.array_equal(ds.X, other.X)
    with pytest.raises(ValueError, match="multiple of 10"):
        load_dataset("mnist1d", n=95, rng=0)


def test_unknown_name_and_option_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*cifar10"):
        load_dataset("cifar")
    assert len(DATASETS) == 14
    with pytest.raises(ValueError, match="unknown option 'dim' for dataset 'iris'"):
        load_dataset("iris", dim=3)
    with pytest.raises(ValueError, match="unknown option 'label_mode' for dataset 'cifar10'"):
        load_dataset("cifar10", root=".", label_mode="fine")
    with pytest.raises(TypeError, match="rng"):
        load_dataset("iris", rng=1.5)
    with pytest.raises(ValueError, match="n must be"):
        load_dataset("iris", n=0)


# ---------------------------------------------------------------------------------- image folders


def _pattern_images(m: int, size: int) -> np.ndarray:
    """(m, 3, size, size) uint8 where channel 0 is 200 + image index, channel 1 is the row number and
    channel 2 the column number: a layout error (HWC vs CHW, transposed planes) changes the values."""
    X = np.empty((m, 3, size, size), dtype=np.uint8)
    X[:, 0] = (200 + np.arange(m))[:, None, None]
    X[:, 1] = np.arange(size)[None, :, None]
    X[:, 2] = np.arange(size)[None, None, :]
    return X


def _assert_pattern(X: np.ndarray, m: int, size: int) -> None:
    assert X.shape == (m, 3, size, size) and X.dtype == np.uint8
    np.testing.assert_array_equal(X, _pattern_images(m, size))
    assert (X[:, 1, 5, :] == 5).all() and (X[:, 2, :, 7] == 7).all()


def _write_pickle(path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)


def _cifar_batch(m: int, labels: dict[bytes, list[int]]) -> dict[bytes, object]:
    """A batch dict in the CIFAR python format: bytes keys, (m, 3072) uint8 rows of R, G, B planes."""
    return {
        b"batch_label": b"training batch 1 of 5",
        b"data": _pattern_images(m, 32).reshape(m, 3 * 32 * 32),
        b"filenames": [f"img_{i}.png".encode() for i in range(m)],
        **labels,
    }


def _write_cifar10(folder, m: int = 3) -> None:
    for i in range(1, 6):
        _write_pickle(folder / f"data_batch_{i}", _cifar_batch(m, {b"labels": [(i + j) % 10 for j in range(m)]}))
    _write_pickle(folder / "test_batch", _cifar_batch(2, {b"labels": [9, 0]}))


def test_cifar10_from_parent_or_folder(tmp_path):
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    for root in (tmp_path, tmp_path / "cifar-10-batches-py"):
        ds = load_dataset("cifar10", root=root)
        _assert_pattern(ds.X[:3], 3, 32)
        assert ds.X.shape == (15, 3, 32, 32) and ds.kind == "image" and ds.num_classes == 10
        np.testing.assert_array_equal(ds.y[:6], [1, 2, 3, 2, 3, 4])
        _assert_pattern(ds.test[0], 2, 32)
        np.testing.assert_array_equal(ds.test[1], [9, 0])
        assert len(ds.info["files"]) == 6
    capped = load_dataset("cifar10", root=tmp_path, n=4, rng=0)
    assert capped.X.shape == (4, 3, 32, 32) and capped.test[0].shape == (2, 3, 32, 32)


def test_cifar_root_from_environment(tmp_path, monkeypatch):
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert load_dataset("cifar10").X.shape == (15, 3, 32, 32)
    monkeypatch.delenv(DATA_ENV)
    with pytest.raises(ValueError, match=f"pass root=.*{DATA_ENV}"):
        load_dataset("cifar10")


def test_cifar100_fine_and_coarse_labels(tmp_path):
    folder = tmp_path / "cifar-100-python"
    _write_pickle(folder / "train", _cifar_batch(4, {b"fine_labels": [0, 99, 5, 6], b"coarse_labels": [0, 19, 1, 2]}))
    _write_pickle(folder / "test", _cifar_batch(2, {b"fine_labels": [7, 8], b"coarse_labels": [3, 4]}))
    fine = load_dataset("cifar100", root=tmp_path)
    coarse = load_dataset("cifar100", root=folder, label_mode="coarse")
    _assert_pattern(fine.X, 4, 32)
    assert fine.num_classes == 100 and coarse.num_classes == 20
    np.testing.assert_array_equal(fine.y, [0, 99, 5, 6])
    np.testing.assert_array_equal(coarse.y, [0, 19, 1, 2])
    np.testing.assert_array_equal(coarse.test[1], [3, 4])
    with pytest.raises(ValueError, match="label_mode"):
        load_dataset("cifar100", root=tmp_path, label_mode="medium")


def _write_svhn(path, labels: list[int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    images = _pattern_images(len(labels), 32).transpose(2, 3, 1, 0)  # (H, W, C, m) as in the .mat files
    scipy.io.savemat(path, {"X": images, "y": np.asarray(labels, dtype=np.uint8).reshape(-1, 1)})


def test_svhn_layout_label_10_is_digit_0_and_extra(tmp_path):
    _write_svhn(tmp_path / "svhn" / "train_32x32.mat", [10, 1, 9])
    _write_svhn(tmp_path / "svhn" / "test_32x32.mat", [10, 3])
    _write_svhn(tmp_path / "svhn" / "extra_32x32.mat", [2, 10, 4, 5])
    ds = load_dataset("svhn", root=tmp_path)
    _assert_pattern(ds.X, 3, 32)
    np.testing.assert_array_equal(ds.y, [0, 1, 9])
    np.testing.assert_array_equal(ds.test[1], [0, 3])
    with_extra = load_dataset("svhn", root=tmp_path / "svhn", extra=True)
    np.testing.assert_array_equal(with_extra.y, [0, 1, 9, 2, 0, 4, 5])
    with pytest.raises(TypeError, match="extra"):
        load_dataset("svhn", root=tmp_path, extra="yes")


def _write_imagenet(tmp_path, size: int, m: int = 2) -> None:
    train, val = tmp_path / f"Imagenet{size}_train_npz", tmp_path / f"Imagenet{size}_val_npz"
    train.mkdir()
    val.mkdir()
    data = _pattern_images(m, size).reshape(m, 3 * size * size)
    for i in range(1, 11):
        np.savez(train / f"train_data_batch_{i}.npz", data=data, labels=np.array([i, 1000]))
    np.savez(val / "val_data.npz", data=data, labels=np.array([1, 500]))


def test_imagenet32_npz_batches_in_subfolders_and_one_based_labels(tmp_path):
    _write_imagenet(tmp_path, 32)
    _write_imagenet(tmp_path, 64)  # same file names next door: the folder name decides
    ds = load_dataset("imagenet32", root=tmp_path)
    assert ds.X.shape == (20, 3, 32, 32) and ds.num_classes == 1000
    _assert_pattern(ds.X[:2], 2, 32)
    np.testing.assert_array_equal(ds.y[:4], [0, 999, 1, 999])
    np.testing.assert_array_equal(ds.test[1], [0, 499])
    big = load_dataset("imagenet64", root=tmp_path, batches=[3])
    _assert_pattern(big.X, 2, 64)
    np.testing.assert_array_equal(big.y, [2, 999])
    with pytest.raises(ValueError, match="batches"):
        load_dataset("imagenet32", root=tmp_path, batches=[0])


def test_image_file_of_the_wrong_size_is_reported(tmp_path):
    _write_imagenet(tmp_path, 32)
    (tmp_path / "Imagenet32_train_npz").rename(tmp_path / "Imagenet64_train_npz")
    (tmp_path / "Imagenet32_val_npz").rename(tmp_path / "Imagenet64_val_npz")
    with pytest.raises(ValueError, match=r"expected image rows of shape \(m, 12288\)"):
        load_dataset("imagenet64", root=tmp_path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar10", ["data_batch_1", "data_batch_5", "test_batch", "cifar-10-batches-py"]),
        ("cifar100", ["train", "test", "cifar-100-python"]),
        ("svhn", ["train_32x32.mat", "test_32x32.mat"]),
        ("imagenet32", ["train_data_batch_1.npz", "train_data_batch_10.npz", "val_data.npz"]),
    ],
)
def test_missing_folder_lists_the_expected_files(tmp_path, name, expected):
    with pytest.raises(FileNotFoundError) as info:
        load_dataset(name, root=tmp_path / "nowhere")
    message = str(info.value)
    assert "does not exist" in message
    assert all(item in message for item in expected)


def test_missing_files_are_named(tmp_path):
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="missing under .*: data_batch_4, test_batch. Expected"):
        load_dataset("cifar10", root=tmp_path)


# ------------------------------------------------------------------------------- restricted unpickler


class _Payload:
    """Pickles as a call of ``func(*args)``: what a crafted dataset file would do on a plain ``pickle.load``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("via", ["open", "system"])
def test_restricted_unpickler_refuses_crafted_files(tmp_path, via):
    marker = tmp_path / "pwned"
    payload = _Payload(open, str(marker), "w") if via == "open" else _Payload(os.system, f"touch {marker}")
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    _write_pickle(folder / "data_batch_1", {b"data": payload, b"labels": [0]})
    if via == "open":  # the payload is live: a plain unpickler would create the marker
        control = tmp_path / "control"
        pickle.loads(pickle.dumps(_Payload(open, str(control), "w"), protocol=2)).close()
        assert control.exists()
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        load_dataset("cifar10", root=tmp_path)
    assert not marker.exists()
    # legitimate files in the same folder still load once the crafted one is replaced
    _write_cifar10(folder)
    assert load_dataset("cifar10", root=tmp_path).X.shape == (15, 3, 32, 32)


def test_cifar_pickles_naming_numpy_1_modules_load(tmp_path):
    """The real files were written by numpy 1 (``numpy.core.multiarray._reconstruct``)."""
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    legacy = pickle.dumps(_cifar_batch(3, {b"labels": [4, 5, 6]}), protocol=2)
    legacy = legacy.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    assert b"numpy.core.multiarray\n_reconstruct" in legacy
    (folder / "data_batch_1").write_bytes(legacy)
    ds = load_dataset("cifar10", root=folder)
    _assert_pattern(ds.X[:3], 3, 32)
    np.testing.assert_array_equal(ds.y[:3], [4, 5, 6])


def test_a_file_in_two_matching_subfolders_is_ambiguous(tmp_path):
    _write_cifar10(tmp_path / "cifar-10-batches-py")
    _write_cifar10(tmp_path / "CIFAR10_copy")
    with pytest.raises(ValueError, match="in several folders"):
        load_dataset("cifar10", root=tmp_path)
    assert load_dataset("cifar10", root=tmp_path / "CIFAR10_copy").X.shape == (15, 3, 32, 32)


def test_cifar_file_with_wrong_content_is_reported(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    _write_pickle(folder / "data_batch_2", {b"images": [1, 2]})
    with pytest.raises(ValueError, match="not a CIFAR batch"):
        load_dataset("cifar10", root=tmp_path)


# ---------------------------------------------------------------------------------------- user arrays


def test_from_arrays_infers_kind_and_classes_without_touching_the_input():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 4, size=20)
    y[0] = 3
    ds = from_arrays(X, y)
    assert (ds.kind, ds.num_classes, ds.X.dtype, ds.y.dtype) == ("tabular", 4, np.float32, np.int64)
    assert X.flags.writeable and not ds.X.flags.writeable
    images = from_arrays(np.zeros((5, 1, 4, 4), dtype=np.int32), [0, 1, 0, 1, 1], name="mine")
    assert (images.kind, images.X.dtype, images.name) == ("image", np.uint8, "mine")
    seq = from_arrays(X, y, kind="sequence", num_classes=6, test=(X[:4], y[:4]))
    assert seq.num_classes == 6 and seq.test[0].shape == (4, 3)
    json.dumps(seq.to_dict())
    assert seq.to_dict()["test_size"] == 4 and "X" not in seq.to_dict()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": np.zeros((4, 2, 2)), "y": [0, 1, 0, 1]}, ValueError, "2-D"),
        ({"X": [[0.0], [np.nan]], "y": [0, 1]}, ValueError, "finite"),
        ({"X": [[1e39], [0.0]], "y": [0, 1]}, ValueError, "float32"),
        ({"X": np.zeros((3, 2)), "y": [0, 1]}, ValueError, "one label per row"),
        ({"X": np.zeros((2, 2)), "y": [0.0, 1.0]}, TypeError, "integers"),
        ({"X": np.zeros((2, 2)), "y": [0, 3], "num_classes": 3}, ValueError, "0..2"),
        ({"X": np.zeros((2, 2)), "y": [0, 0]}, ValueError, "single class"),
        ({"X": np.zeros((2, 1, 2, 2)), "y": [0, 1]}, TypeError, "uint8"),
        ({"X": np.full((2, 1, 2, 2), 300), "y": [0, 1]}, ValueError, "0..255"),
        ({"X": np.zeros((2, 2)), "y": [0, 1], "kind": "image"}, ValueError, "4-D"),
        ({"X": np.zeros((2, 2)), "y": [0, 1], "kind": "video"}, ValueError, "kind"),
        ({"X": [["a"], ["b"]], "y": [0, 1]}, TypeError, "real numbers"),
        ({"X": np.zeros((2, 2)), "y": [0, 1], "test": (np.zeros((2, 3)), [0, 1])}, ValueError, "test X rows"),
        (
            {"X": np.zeros((2, 2)), "y": [0, 1], "test": (np.zeros((2, 2)), [0, 5]), "num_classes": 2},
            ValueError,
            "test y must lie in 0..1",
        ),
    ],
)
def test_from_arrays_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        from_arrays(**kwargs)


# ---------------------------------------------------------------------------------------------- splits


def _toy(n: int = 100, k: int = 4, *, test: int = 0) -> Dataset:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(n + test, 2)), np.arange(n + test) % k
    return from_arrays(X[:n], y[:n], num_classes=k, test=(X[n:], y[n:]) if test else None)


def test_splits_are_disjoint_with_requested_sizes_and_fractions():
    ds = _toy(100)
    s = make_splits(ds, labeled=10, validation=0.15, unlabeled=50, test=0.25, rng=0)
    assert s.sizes() == {"labeled": 10, "validation": 15, "unlabeled": 50, "test": 25}
    everything = np.concatenate([s.labeled, s.validation, s.unlabeled, s.test])
    assert everything.dtype == np.int64 and len(np.unique(everything)) == 100
    assert not s.test_official and s.seed == 0 and not s.labeled.flags.writeable
    assert make_splits(ds, labeled=0.019, validation=0, unlabeled=1, test=1, rng=0).sizes()["labeled"] == 1


def test_splits_use_the_official_test_split():
    ds = _toy(60, test=30)
    whole = make_splits(ds, labeled=5, validation=5, unlabeled=50, rng=2)
    assert whole.test_official and np.array_equal(whole.test, np.arange(30))
    assert len(np.unique(np.concatenate([whole.labeled, whole.validation, whole.unlabeled]))) == 60
    part = make_splits(ds, labeled=5, validation=5, unlabeled=50, test=0.5, rng=2)
    assert part.test_official and len(part.test) == 15 and len(np.unique(part.test)) == 15 and part.test.max() < 30
    with pytest.raises(ValueError, match="larger than the official test split"):
        make_splits(ds, labeled=5, validation=5, unlabeled=5, test=31, rng=2)


def test_splits_errors():
    ds = _toy(100)
    with pytest.raises(ValueError, match="labeled=60 \\+ validation=30 \\+ unlabeled=20 \\+ test=1 = 111.*only 100"):
        make_splits(ds, labeled=60, validation=30, unlabeled=20, test=1, rng=0)
    with pytest.raises(ValueError, match="no official test split: pass test="):
        make_splits(ds, labeled=1, validation=1, unlabeled=1, rng=0)
    with pytest.raises(ValueError, match="rounds down to 0"):
        make_splits(ds, labeled=0.001, validation=1, unlabeled=1, test=1, rng=0)
    with pytest.raises(ValueError, match="fraction must lie in \\(0, 1\\)"):
        make_splits(ds, labeled=1.0, validation=1, unlabeled=1, test=1, rng=0)
    with pytest.raises(ValueError, match="validation must be an integer >= 0"):
        make_splits(ds, labeled=1, validation=-1, unlabeled=1, test=1, rng=0)
    with pytest.raises(TypeError, match="unlabeled"):
        make_splits(ds, labeled=1, validation=1, unlabeled=True, test=1, rng=0)
    with pytest.raises(TypeError, match="dataset"):
        make_splits(np.zeros((3, 2)), labeled=1, validation=1, unlabeled=1, test=1, rng=0)


def test_splits_reproduce_from_the_seed_and_hash_their_indices():
    ds = _toy(100)
    kwargs = {"labeled": 10, "validation": 10, "unlabeled": 30, "test": 20}
    a, b, c = (make_splits(ds, rng=seed, **kwargs) for seed in (5, 5, 6))
    for attr in ("labeled", "validation", "unlabeled", "test"):
        np.testing.assert_array_equal(getattr(a, attr), getattr(b, attr))
    assert not np.array_equal(a.unlabeled, c.unlabeled)
    record = json.loads(json.dumps(a.to_dict()))
    assert record["sizes"]["unlabeled"] == 30 and record["seed"] == 5 and record["test_official"] is False
    assert record["digest"] == b.to_dict()["digest"] != c.to_dict()["digest"] and len(record["digest"]) == 16
    assert make_splits(ds, rng=np.random.default_rng(5), **kwargs).seed is None


def test_stratified_labeled_split_is_even_and_fills_short_classes():
    ds = _toy(100, k=4)
    s = make_splits(ds, labeled=22, validation=10, unlabeled=10, test=10, rng=0, stratify=True)
    counts = np.bincount(ds.y[s.labeled], minlength=4)
    assert s.stratified and counts.sum() == 22 and counts.max() - counts.min() <= 1
    y = np.array([0] * 3 + [1] * 50 + [2] * 47)
    short = from_arrays(np.zeros((100, 1)), y)
    t = make_splits(short, labeled=30, validation=0, unlabeled=70, test=0, rng=1, stratify=True)
    counts = np.bincount(short.y[t.labeled], minlength=3)
    assert counts[0] == 3 and counts.sum() == 30 and min(counts[1:]) >= 10
    assert len(np.unique(np.concatenate([t.labeled, t.unlabeled]))) == 100
