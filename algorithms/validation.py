"""Input validation shared by every public entry point (scikit-learn style).

Each checker takes the user's value and the argument's name, returns a clean value, and raises
:class:`ValueError` (bad value) or :class:`TypeError` (bad type) with a message that names the argument.
Nothing is silently clipped or coerced beyond a dtype conversion.
"""

from __future__ import annotations

import numbers

import numpy as np

from .typing import ArrayLike, FloatArray, RNGLike


def as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """Convert array-likes (lists, numpy arrays, torch tensors on any device) to a numpy array."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; converted once, at the entry
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy's own message is kept
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}: {exc}") from None


def check_vector(x: ArrayLike, name: str) -> FloatArray:
    """A non-empty, finite, 1-D float64 array of shape (n,)."""
    arr = as_numpy(x, name)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}")
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n,), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: the pool must contain at least one point")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr))
        raise ValueError(f"{name} must be finite; found NaN or inf at index {bad[:5].tolist()}")
    return arr


def check_gains(gains: ArrayLike, name: str = "gains") -> FloatArray:
    """Finite, non-negative gains of shape (n,), n >= 1."""
    g = check_vector(gains, name)
    if np.any(g < 0):
        bad = np.flatnonzero(g < 0)
        raise ValueError(
            f"{name} must be non-negative (higher = more informative); "
            f"found {g[bad[0]]!r} at index {int(bad[0])}"
        )
    return g


def check_probability_vector(p: ArrayLike, name: str = "probabilities") -> FloatArray:
    """Finite entries in [0, 1], shape (n,)."""
    arr = check_vector(p, name)
    if np.any((arr < 0) | (arr > 1)):
        bad = np.flatnonzero((arr < 0) | (arr > 1))
        raise ValueError(
            f"{name} must lie in [0, 1]; found {arr[bad[0]]!r} at index {int(bad[0])}"
        )
    return arr


def check_int(value: object, name: str, *, low: int = 0, high: int | None = None) -> int:
    """An integer in [low, high] (high=None: no upper bound). Integral floats are not accepted."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got a bool ({value!r})")
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({value!r})")
    if not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < low or (high is not None and value > high):
        where = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an integer {where}, got {value}")
    return value


def check_budget(budget: object, n: int) -> int:
    """The per-round budget b: an integer in [0, n] (n = pool size)."""
    return check_int(budget, "budget", low=0, high=n)


def check_mistakes(mistakes: object) -> int:
    """The number of teacher mistakes m: an integer >= 0 (it may exceed the pool size)."""
    return check_int(mistakes, "mistakes", low=0)


def check_rng(rng: RNGLike) -> np.random.Generator:
    """The ``rng`` contract: a Generator is used as is (and advanced); an int seeds a new PCG64; None
    draws fresh OS entropy. Nothing else is accepted (in particular not the legacy global RNG)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_))):
        if rng is not None and int(rng) < 0:
            raise ValueError(f"rng seed must be non-negative, got {rng}")
        return np.random.default_rng(None if rng is None else int(rng))
    raise TypeError(
        f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


#: Largest condition number of a noise transition matrix T that may be inverted (backward correction,
#: importance targets; spec weighted.md §8).
MAX_TRANSITION_CONDITION = 1e8

#: Tolerance of the simplex check: |sum_j p_j - 1| <= SIMPLEX_ATOL and p_j >= -SIMPLEX_ATOL.
SIMPLEX_ATOL = 1e-6


def check_probs(probs: ArrayLike, name: str = "probs", *, min_classes: int = 2) -> FloatArray:
    """Rows on the probability simplex: a finite float64 array of shape (n, K), n >= 1, K >= min_classes,
    entries >= -1e-6 and row sums within 1e-6 of 1. Returned as given (no clipping)."""
    arr = as_numpy(probs, name)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D of shape (n, K) (rows on the simplex), got shape {arr.shape}")
    n, k = arr.shape
    if n == 0:
        raise ValueError(f"{name} is empty: it needs at least one row")
    if k < min_classes:
        raise ValueError(f"{name} must have at least {min_classes} classes (columns), got {k}")
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        raise ValueError(f"{name} must be finite; found NaN or inf in row {np.flatnonzero(~finite)[:5].tolist()}")
    neg = arr.min(axis=1) < -SIMPLEX_ATOL
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise ValueError(
            f"{name} rows must lie on the simplex; row {i} has a negative entry {arr[i].min()!r} "
            "(pass probabilities, not logits)"
        )
    off = np.abs(arr.sum(axis=1) - 1.0) > SIMPLEX_ATOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"{name} rows must sum to 1 within {SIMPLEX_ATOL:g}; row {i} sums to {arr[i].sum()!r} "
            "(pass probabilities, not logits)"
        )
    return arr


def check_labels(labels: ArrayLike, n: int, num_classes: int, name: str = "labels") -> np.ndarray:
    """Integer class labels of shape (n,) with values in 0..num_classes-1, returned as int64."""
    arr = as_numpy(labels, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n,), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but the probabilities have {n} rows")
    if not (np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must hold integers 0..K-1, got dtype {arr.dtype}")
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        bad = int(np.flatnonzero((arr < 0) | (arr >= num_classes))[0])
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}; found {int(arr[bad])} at index {bad}")
    return arr.astype(np.int64, copy=False)


def check_alpha(alpha: ArrayLike, n: int | None = None, name: str = "alpha") -> FloatArray:
    """Per-example teacher accuracies: finite, in [0, 1], shape (n,) (a scalar is broadcast to (n,))."""
    arr = as_numpy(alpha, name)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, arr, dtype=np.float64) if np.issubdtype(arr.dtype, np.number) else arr
    arr = check_probability_vector(arr, name)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but there are {n} examples")
    return arr


def check_condition(
    matrix: np.ndarray, name: str, *, max_condition: float = MAX_TRANSITION_CONDITION, hint: str = ""
) -> float:
    """The 2-norm condition number of a square float64 matrix that is about to be inverted; ``ValueError``
    (naming ``name``, with an optional ``hint``) when it exceeds ``max_condition``. Singular gives inf
    (computed from the singular values, without a division warning)."""
    s = np.linalg.svd(matrix, compute_uv=False)
    cond = float(s[0] / s[-1]) if s[-1] > 0 else float("inf")
    if not cond <= max_condition:
        raise ValueError(
            f"{name} is ill-conditioned: cond = {cond:.3g} > {max_condition:g} (its inverse amplifies the "
            f"noise without bound{hint})"
        )
    return cond
