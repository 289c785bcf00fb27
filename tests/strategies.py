"""Hypothesis strategies that build whole problem instances (cleanlab style)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def games(draw, max_n: int = 40, min_n: int = 1, min_positive: float = 1e-3):
    """(gains (n,), budget in [0, n], mistakes in [0, n + 1]).

    Gains mix continuous values in [min_positive, 1], a small alphabet (ties and exact zeros) and values
    near ``min_positive``, so every regime of the game is reached. Tests against the LP keep the default
    ``min_positive = 1e-3``: HiGHS works to ~1e-7 absolute feasibility, so to it a gain of 1e-9 beside
    1 is zero. The certificate tests need no LP and use ``min_positive = 1e-12``."""
    gain = st.one_of(
        st.floats(min_positive, 1.0),
        st.sampled_from([0.0, 0.05, 0.25, 0.5, 1.0]),
        st.floats(min_positive, 1000 * min_positive),
    )
    n = draw(st.integers(min_n, max_n))
    g = np.array(draw(st.lists(gain, min_size=n, max_size=n)), dtype=float)
    b = draw(st.integers(0, n))
    m = draw(st.integers(0, n + 1))
    return g, b, m


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    """|a - b| <= rel * max(1, |b|): relative, and absolute near 0."""
    return abs(a - b) <= rel * max(1.0, abs(b))


def top_sum(x: np.ndarray, k: int) -> float:
    """Sum of the k largest entries by a full sort: an independent reference for the O(n) partition."""
    return float(np.sort(x)[::-1][: max(k, 0)].sum())
