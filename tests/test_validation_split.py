"""split_validation (algorithms.teacher_quality): exact sizes, stratified proportions (largest remainders,
at least one per class), the rng contract, errors, and a hypothesis property (disjoint, covering, sized)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from robustdistill.algorithms import teacher_quality
from robustdistill.algorithms.teacher_quality import split_validation


def _check_partition(train: np.ndarray, val: np.ndarray, n: int, size: int) -> None:
    for part in (train, val):
        assert part.dtype == np.int64 and part.ndim == 1
        assert np.all(np.diff(part) > 0)  # sorted, distinct
    assert val.size == size and train.size == n - size
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(n))


def test_exported():
    assert "split_validation" in teacher_quality.__all__


@pytest.mark.parametrize("stratify", [True, False])
@pytest.mark.parametrize(
    ("validation", "size"), [(1, 1), (37, 37), (99, 99), (0.2, 20), (0.3, 30), (0.015, 2), (0.985, 99)]
)
def test_exact_sizes(validation, size, stratify):
    """A count is taken as is; a fraction gives ceil(fraction n) (0.3 * 100 is 30, not 31 by round-off)."""
    labels = np.repeat(np.arange(4), 25)
    train, val = split_validation(labels, validation, rng=0, stratify=stratify)
    _check_partition(train, val, 100, size)


def test_stratified_proportions_are_exact_when_they_divide():
    labels = np.random.default_rng(0).permutation(np.repeat([0, 1, 2], [600, 300, 100]))
    _, val = split_validation(labels, 100, rng=1)
    np.testing.assert_array_equal(np.bincount(labels[val]), [60, 30, 10])
    _, val = split_validation(labels, 0.25, rng=2)
    np.testing.assert_array_equal(np.bincount(labels[val]), [150, 75, 25])


def test_stratified_largest_remainders():
    """Quotas 7 * (5, 3, 2) / 10 = (3.5, 2.1, 1.4): floors (3, 2, 1), the last unit to the largest
    remainder (class 0). Equal remainders are broken by rng: over seeds, both tied classes get it."""
    labels = np.repeat([0, 1, 2], [5, 3, 2])
    for seed in range(5):
        _, val = split_validation(labels, 7, rng=seed)
        np.testing.assert_array_equal(np.bincount(labels[val], minlength=3), [4, 2, 1])
    tied = np.repeat([0, 1, 2], [4, 4, 2])  # quotas (2.5, 2.5, 1): one of classes 0 and 1 gets the 6th unit
    winners = set()
    for seed in range(40):
        _, val = split_validation(tied, 6, rng=seed)
        counts = np.bincount(tied[val], minlength=3).tolist()
        assert counts in ([3, 2, 1], [2, 3, 1])
        winners.add(counts[0])
    assert winners == {2, 3}  # false-failure probability 2 * 2^-40


def test_every_class_with_two_rows_gets_a_validation_row_when_the_size_allows():
    """Class 2 has 2 of 1000 rows: its quota at |V| = 10 is 0.02, yet it gets one; the unit comes from the
    class most above its quota (class 1: 3 rows for a quota of 2.97). Singletons are not forced. With |V|
    below the number of such classes the allocation stays proportional."""
    labels = np.repeat([0, 1, 2, 3], [700, 297, 2, 1])
    _, val = split_validation(labels, 10, rng=0)
    counts = np.bincount(labels[val], minlength=4)
    # quotas (7.0, 2.97, 0.02, 0.01) -> largest remainders (7, 3, 0, 0) -> class 2 topped up: (7, 2, 1, 0)
    np.testing.assert_array_equal(counts, [7, 2, 1, 0])
    many = np.repeat(np.arange(10), [910] + [10] * 9)
    _, val = split_validation(many, 5, rng=0)  # 10 classes with >= 2 rows, only 5 validation rows
    np.testing.assert_array_equal(np.bincount(many[val], minlength=10)[0], 5)


def test_rows_within_a_class_are_uniform():
    """Each of the 20 rows of class 0 is in the validation set with probability 5/20 (stratified: exactly
    5 of them each time); over 2000 seeds every count is within 5 binomial standard errors of 500
    (false-failure probability <= 20 * 5.7e-7)."""
    labels = np.repeat([0, 1], [20, 20])
    hits = np.zeros(40)
    for seed in range(2000):
        _, val = split_validation(labels, 10, rng=seed)
        hits[val] += 1
    se = math.sqrt(2000 * 0.25 * 0.75)
    assert np.all(np.abs(hits - 500) <= 5 * se)


def test_rng_contract():
    labels = np.random.default_rng(3).integers(0, 5, size=200)
    for stratify in (True, False):
        a = split_validation(labels, 40, rng=7, stratify=stratify)
        b = split_validation(labels, 40, rng=7, stratify=stratify)
        c = split_validation(labels, 40, rng=np.random.default_rng(7), stratify=stratify)
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(a, c):
            np.testing.assert_array_equal(x, y)
        gen = np.random.default_rng(8)
        first, second = (
            split_validation(labels, 40, rng=gen, stratify=stratify),
            split_validation(labels, 40, rng=gen, stratify=stratify),
        )
        assert not np.array_equal(first[1], second[1])  # the Generator is advanced
    state = np.random.get_state()
    split_validation(labels, 40, rng=None)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the legacy global RNG is untouched
    with pytest.raises(TypeError, match="rng"):
        split_validation(labels, 40, rng="seed")


def test_labels_as_lists_and_sparse_class_ids():
    train, val = split_validation([5, 5, 9, 9, 9, 9, 1000, 1000], 4, rng=0)
    _check_partition(train, val, 8, 4)
    assert sorted(np.asarray([5, 5, 9, 9, 9, 9, 1000, 1000])[val].tolist()) == [5, 9, 9, 1000]


@pytest.mark.parametrize(
    ("labels", "validation", "error", "match"),
    [
        (np.zeros((4, 2), dtype=int), 1, ValueError, "labels must be 1-D"),
        ([0], 1, ValueError, "at least 2 rows"),
        ([0, 1, -1, 2], 1, ValueError, "non-negative"),
        ([0.0, 1.0, 1.0], 1, TypeError, "labels"),
        ([True, False, True], 1, TypeError, "labels"),
        ([0, 1, 0, 1], 4, ValueError, r"validation must be a count in \[1, n - 1\]"),
        ([0, 1, 0, 1], 0, ValueError, "validation"),
        ([0, 1, 0, 1], -2, ValueError, "validation"),
        ([0, 1, 0, 1], 0.0, ValueError, "validation"),
        ([0, 1, 0, 1], 1.0, ValueError, "validation"),
        ([0, 1, 0, 1], 1.5, ValueError, "validation"),
        ([0, 1, 0, 1], math.nan, ValueError, "validation"),
        ([0, 1, 0, 1], 0.9, ValueError, "leaving none for training"),
        ([0, 1, 0, 1], True, TypeError, "validation"),
        ([0, 1, 0, 1], "2", TypeError, "validation"),
    ],
)
def test_errors_name_the_argument(labels, validation, error, match):
    with pytest.raises(error, match=match):
        split_validation(labels, validation, rng=0)


@given(
    seed=st.integers(0, 2**32 - 1),
    labels=st.lists(st.integers(0, 6), min_size=2, max_size=120),
    data=st.data(),
    stratify=st.booleans(),
)
def test_partition_property(seed, labels, data, stratify):
    """Disjoint, covering, exact sizes, sorted int64; stratified: every class within one row of its quota
    (floor or ceil), except a class topped up to its guaranteed one row and the donors that paid for those
    (at most one row each per top-up), never above its size; every class with >= 2 rows represented whenever
    |V| is at least the number of such classes."""
    y = np.asarray(labels)
    n = y.size
    if data.draw(st.booleans()):
        validation = data.draw(st.integers(1, n - 1))
        size = validation
    else:
        size = data.draw(st.integers(1, n - 1))
        validation = (size - 0.5) / n  # a fraction whose ceil(fraction n) is exactly size
    train, val = split_validation(y, validation, rng=seed, stratify=stratify)
    _check_partition(train, val, n, size)
    if stratify:
        classes, counts = np.unique(y, return_counts=True)
        got = np.array([np.count_nonzero(y[val] == c) for c in classes])
        assert np.all(got <= counts)
        eligible = counts >= 2
        quota = size * counts / n
        if np.count_nonzero(eligible) <= size:
            assert np.all(got[eligible] >= 1)
            topped = np.count_nonzero(eligible & (quota < 1))  # the most top-ups there can be
            assert np.all((got <= np.ceil(quota - 1e-9)) | (got == 1))
            assert np.all(got >= np.floor(quota + 1e-9) - topped)
        else:
            np.testing.assert_array_less(np.abs(got - size * counts / n), 1 + 1e-9)


def test_doctest():
    """The module's docstring examples, split_validation's included, run as written."""
    import doctest

    outcome = doctest.testmod(teacher_quality, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted >= 2 and outcome.failed == 0
