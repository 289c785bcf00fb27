"""Test configuration: hypothesis profiles (`dev`, `ci`) and shared fixtures.

Select a profile with HYPOTHESIS_PROFILE (CI sets `ci`). All randomness in tests comes from
hypothesis-drawn or fixed seeds passed as ``rng=``; no test touches a global RNG.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Numerics: no per-example deadline (cvxpy solves vary in time); derandomized in CI so a red run is
# reproducible from the log alone.
settings.register_profile(
    "dev",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
