"""Array conventions of robustdistill, written once (the README's Conventions section mirrors this).

- ``probs``: float array of shape (n, K); each row lies on the probability simplex. Logits are always a
  separate, explicitly named argument and are never guessed from values.
- ``labels``: int array of shape (n,) with values in ``0 .. K-1``.
- ``gains`` and scores: float array of shape (n,); **higher = more informative / more trusted**.
- Noise transition matrix ``T`` of shape (K, K): ``T[i, j] = P(teacher says j | true class i)``; rows sum
  to 1 (cleanlab stores the transpose).
- Randomness: every stochastic function takes a keyword-only ``rng``: a :class:`numpy.random.Generator`,
  an int seed, or ``None`` (fresh OS entropy). No function touches a global RNG.
- Results: small frozen dataclasses with ``to_dict()`` (JSON-ready).
- Errors: :class:`ValueError` for bad values, :class:`TypeError` for bad types, each naming the argument
  (the checkers of :mod:`~robustdistill.algorithms.validation`). Arrays hold real numbers (no strings, numeric
  ones included, objects or complex numbers); integers are at most 2**53; flags are ``bool`` (or
  ``numpy.bool_``), options ``str``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: What ``rng=`` accepts everywhere.
RNGLike = np.random.Generator | int | None
#: A float64 numpy array.
FloatArray = NDArray[np.float64]
#: An int64 numpy array.
IntArray = NDArray[np.int64]

__all__ = ["ArrayLike", "FloatArray", "IntArray", "RNGLike"]
