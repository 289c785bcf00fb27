"""The common form of every verified claim: :class:`CheckResult`, and helpers shared by the simulators."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robustdistill.algorithms.results import Result

__all__ = ["COMPARATORS", "EXACT", "GROUPS", "REL", "Check", "CheckResult", "interval_check", "rel", "summary"]

REL = 1e-9  # relative tolerance of value identities (spec: the oracle test asserts 1e-9)
EXACT = 1e-12  # slack allowed in exact inequalities and identities (float round-off only)
#: The method groups of the checks (``Check.group``; ``run_checks(only=...)``, ``verify --only``).
GROUPS = ("rad", "weighted", "slam")
#: The plain comparators of :attr:`CheckResult.comparator`: ``measured OP bound`` for the operators, and ``in``
#: for "the bound lies in the interval" (``interval[0] <= bound <= interval[1]``).
COMPARATORS = ("<=", ">=", "<", ">", "==", "in")


@dataclass(frozen=True, eq=False)
class CheckResult(Result):
    """One verified claim.

    Attributes:
        name: short id ("P1", "P3-MC", ...).
        claim: the claim in words, tagged (paper) or (our formulation).
        bound: the number the measurement is held to (a tolerance, or the bound of an inequality).
        measured: what the simulator measured (the worst case over instances for exact checks).
        interval: (low, high): a confidence interval for Monte-Carlo checks; for exact checks the range
            of the per-instance statistic over all instances.
        holds: whether the claim held.
        comparator: how ``holds`` follows from the numbers (required, keyword-only). One of
            :data:`COMPARATORS`: an operator means ``holds == (measured OP bound)``; ``in`` means
            ``holds == (interval[0] <= bound <= interval[1])``. Otherwise a short text for a claim that
            combines conditions, written to be read just before the bound (``"pooled |z| <= 4 and measured
            <="`` reads ``pooled |z| <= 4 and measured <= 5.69``). Readers print it between the measurement
            and the bound (``robustdistill verify``, ``docs/results/checks.md``, the HTML report).
        data: optional JSON-ready measurements behind the claim (curves for ``paper_figures``);
            ``robustdistill verify`` writes it to ``DIR/data/NAME.json`` instead of ``verify.json``.
    """

    name: str
    claim: str
    bound: float
    measured: float
    interval: tuple[float, float]
    holds: bool
    comparator: str = field(kw_only=True)
    data: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.comparator, str) or not self.comparator.strip():
            raise ValueError(
                f"CheckResult {self.name!r}: comparator must be one of {COMPARATORS} or a short non-empty text "
                f"saying how holds follows from measured, bound and interval, got {self.comparator!r}"
            )


@dataclass(frozen=True)
class Check:
    """A registered simulator: ``run(rng, size)`` returns one :class:`CheckResult`. ``quick`` and ``full``
    are the sizes passed in quick and full mode (an int, or a tuple/dict the check understands);
    ``group`` is the method it belongs to (``rad``, ``weighted``, ``slam``)."""

    name: str
    group: str
    run: Callable[[np.random.Generator, Any], CheckResult]
    quick: Any
    full: Any


def rel(a, b):
    """|a - b| / max(1, |a|, |b|), elementwise for arrays: relative where large, absolute near 0."""
    return np.abs(a - b) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))


def summary(name: str, claim: str, bound: float, stats: list[float], *, upper: bool) -> CheckResult:
    """Exact check over instances: ``upper`` -> every stat <= bound (measured = max); else every
    stat >= bound (measured = min)."""
    arr = np.asarray(stats, dtype=float)
    measured = float(arr.max() if upper else arr.min())
    holds = bool(measured <= bound) if upper else bool(measured >= bound)
    interval = (float(arr.min()), float(arr.max()))
    return CheckResult(name, claim, bound, measured, interval, holds, comparator="<=" if upper else ">=")


def interval_check(name: str, claim: str, target: float, mean: float, se: float, z: float = 4.0) -> CheckResult:
    """Monte-Carlo check: the exact ``target`` lies in ``mean +- z * se`` (default 4 SE: a two-sided
    false-failure probability of 6.3e-5 under the normal approximation)."""
    low, high = mean - z * se, mean + z * se
    return CheckResult(
        name, claim, float(target), float(mean), (float(low), float(high)), bool(low <= target <= high), comparator="in"
    )
