"""Input validation shared by every public entry point (scikit-learn style).

Each checker takes the user's value and the argument's name, returns a clean value, and raises
:class:`ValueError` (bad value) or :class:`TypeError` (bad type) with a message that names the argument.
Nothing is silently clipped or coerced beyond a dtype conversion.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from .typing import ArrayLike, FloatArray, RNGLike

#: The largest integer :func:`check_int` accepts: every integer up to 2**53 is exact in float64, the
#: precision the data-level steps compute in (larger counts would also exhaust any memory).
MAX_INT = 2**53


def describe(value: object, limit: int = 60) -> str:
    """``repr(value)``, shortened to ``limit`` characters (a 400-digit integer stays readable; one of more
    than 4300 digits, which Python refuses to print, is named as such)."""
    try:
        text = repr(value)
    except ValueError:
        return f"a {type(value).__name__} too large to print"
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


def as_numpy(x: ArrayLike, name: str) -> np.ndarray:
    """Convert array-likes (lists, numpy arrays, torch tensors on any device) to a numpy array.

    A bfloat16 tensor (which numpy lacks) comes back as float32; ragged nesting is a ``TypeError``."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor; converted once, at the entry
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # numpy's reason (e.g. a ragged nested list) is kept
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}: {exc}") from None


def as_real_array(x: ArrayLike, name: str) -> np.ndarray:
    """:func:`as_numpy`, holding real numbers or booleans: strings (numeric ones too), objects and
    complex numbers are a ``TypeError``. Shape and values are not checked."""
    arr = as_numpy(x, name)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must hold real numbers, got complex dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, name: str) -> None:
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[:5]
        where = bad[:, 0].tolist() if arr.ndim == 1 else [tuple(i) for i in bad.tolist()]
        raise ValueError(f"{name} must be finite; found NaN or inf at index {where}")


def check_array(x: ArrayLike, name: str, shape: tuple[int | str, ...]) -> FloatArray:
    """A finite float64 array of ``shape``, whose entries are sizes (ints, checked) or symbols (str: any
    size >= 1), e.g. ``(n, "d")`` for an (n, d) matrix of n given rows. Empty arrays are refused."""
    arr = as_real_array(x, name)
    want = "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    if arr.ndim != len(shape):
        raise ValueError(f"{name} must be {len(shape)}-D of shape {want}, got shape {arr.shape}")
    for axis, (size, spec) in enumerate(zip(arr.shape, shape)):
        if isinstance(spec, int) and size != spec:
            raise ValueError(f"{name} must have shape {want}, got shape {arr.shape} (axis {axis})")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: it must have shape {want} with every size >= 1, got {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr, name)
    return arr


def check_real(
    value: object,
    name: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in the interval from ``low`` to ``high`` (each end closed unless ``*_open``),
    as a float. Bools, strings (numeric ones too), complex numbers and arrays are a ``TypeError``; an
    integer too large for a float is a ``ValueError``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {describe(value)}")
    try:
        x = float(value)
    except OverflowError:
        x = math.inf
    inside = (x > low if low_open else x >= low) and (x < high if high_open else x <= high)
    if not (math.isfinite(x) and inside):
        raise ValueError(f"{name} must be {_interval(low, high, low_open, high_open)}, got {describe(value)}")
    return x


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """'finite and in [low, high]', 'finite and >= low', ... for messages."""
    if math.isinf(low) and math.isinf(high):
        return "a finite real number"
    if math.isinf(high):
        return f"finite and {'>' if low_open else '>='} {low:g}"
    if math.isinf(low):
        return f"finite and {'<' if high_open else '<='} {high:g}"
    return f"finite and in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_flag(value: object, name: str) -> bool:
    """A real boolean (``bool`` or ``numpy.bool_``): the strings ``"no"`` or ``"False"``, ints and arrays
    are a ``TypeError`` (they would silently read as true or false)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool (True or False), got {type(value).__name__} {describe(value)}")
    return bool(value)


def check_choice(value: object, name: str, choices: tuple[str, ...]) -> str:
    """One of the strings ``choices``; a non-string (a 1-element string array, bytes, ...) is a
    ``TypeError``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {list(choices)}; got {type(value).__name__} {describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {describe(value)}")
    return str(value)


def check_vector(x: ArrayLike, name: str) -> FloatArray:
    """A non-empty, finite, 1-D float64 array of shape (n,)."""
    arr = as_real_array(x, name)
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
            f"{name} must be non-negative (higher = more informative); found {g[bad[0]]!r} at index {int(bad[0])}"
        )
    return g


def check_probability_vector(p: ArrayLike, name: str = "probabilities") -> FloatArray:
    """Finite entries in [0, 1], shape (n,)."""
    arr = check_vector(p, name)
    if np.any((arr < 0) | (arr > 1)):
        bad = np.flatnonzero((arr < 0) | (arr > 1))
        raise ValueError(f"{name} must lie in [0, 1]; found {arr[bad[0]]!r} at index {int(bad[0])}")
    return arr


def check_int(value: object, name: str, *, low: int = 0, high: int | None = None, hint: str = "") -> int:
    """An integer in [low, high] (high=None: up to :data:`MAX_INT`). Integral floats are not accepted.
    ``hint`` is appended to the message of an out-of-range value."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer, got a bool ({value!r})")
    if not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} ({describe(value)})")
    if not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {type(value).__name__} {describe(value)}")
    value = int(value)
    top = MAX_INT if high is None else min(high, MAX_INT)
    if value < low or value > top:
        where = f"in [{low}, {high}]" if high is not None and high <= MAX_INT else f">= {low} (at most 2**53)"
        raise ValueError(f"{name} must be an integer {where}, got {describe(value)}{hint}")
    return value


def check_budget(budget: object, n: int, pool: str = "the pool") -> int:
    """The per-round budget b: an integer in [0, n], n the size of ``pool`` (named in the message)."""
    return check_int(budget, "budget", low=0, high=n, hint=f" ({pool} has {n} points)")


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
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


#: Largest condition number of a noise transition matrix T that may be inverted (backward correction,
#: importance targets; ``docs/theory/weighted.md#weighted-baselines``).
MAX_TRANSITION_CONDITION = 1e8

#: Tolerance of the simplex check: ``|sum_j p_j - 1| <= SIMPLEX_ATOL`` and ``p_j >= -SIMPLEX_ATOL``.
SIMPLEX_ATOL = 1e-6


def check_probs(probs: ArrayLike, name: str = "probs", *, min_classes: int = 2) -> FloatArray:
    """Rows on the probability simplex: a finite float64 array of shape (n, K), n >= 1, K >= min_classes,
    entries >= -1e-6 and row sums within 1e-6 of 1. Returned as given (no clipping)."""
    arr = as_real_array(probs, name)
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
    with np.errstate(over="ignore"):  # a row of huge entries sums to inf, and fails below
        sums = arr.sum(axis=1)
    off = np.abs(sums - 1.0) > SIMPLEX_ATOL
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"{name} rows must sum to 1 within {SIMPLEX_ATOL:g}; row {i} sums to {sums[i]!r} "
            "(pass probabilities, not logits)"
        )
    return arr


def check_labels(
    labels: ArrayLike, n: int, num_classes: int, name: str = "labels", like: str = "the probabilities"
) -> np.ndarray:
    """Integer class labels of shape (n,) with values in 0..num_classes-1, returned as int64; ``like``
    names the argument with the n rows."""
    arr = as_numpy(labels, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D of shape (n,), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but {like} has {n} rows")
    if not (np.issubdtype(arr.dtype, np.integer) and not np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must hold integers 0..K-1, got dtype {arr.dtype}")
    if n and (arr.min() < 0 or arr.max() >= num_classes):
        bad = int(np.flatnonzero((arr < 0) | (arr >= num_classes))[0])
        raise ValueError(f"{name} must lie in 0..{num_classes - 1}; found {int(arr[bad])} at index {bad}")
    return arr.astype(np.int64, copy=False)


def check_alpha(
    alpha: ArrayLike, n: int | None = None, name: str = "alpha", like: str = "the probabilities"
) -> FloatArray:
    """Per-example teacher accuracies: finite, in [0, 1], shape (n,) (a scalar is broadcast to (n,));
    ``like`` names the argument with the n rows."""
    arr = as_real_array(alpha, name)
    if arr.ndim == 0 and n is not None:
        arr = np.full(n, arr, dtype=np.float64)
    arr = check_probability_vector(arr, name)
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} entries but {like} has {n} rows")
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
            f"{name} is ill-conditioned: cond = {cond:.3g} > max_condition = {max_condition:g} (its inverse "
            f"amplifies the noise without bound{hint})"
        )
    return cond
