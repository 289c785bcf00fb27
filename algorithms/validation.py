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
