r"""Simulators that check the stated guarantees; :func:`run_checks` feeds ``robustdistill verify``.

Every claim is one registered :class:`~robustdistill.theory.simulators.checks.Check` returning a
:class:`CheckResult`. The claims are **our formulation** unless tagged (paper); each module says which
theory section it checks:

- :mod:`~robustdistill.theory.simulators.rad_checks`: the RAD query game, P1-P6 (``docs/theory/rad.md#rad-guarantees``).
- :mod:`~robustdistill.theory.simulators.weighted_checks`: Weighted Distillation, Lemmas 1-7, Fact 6 and the
  Massart-halfspace simulator (``docs/theory/weighted.md#weighted-guarantees``).
- :mod:`~robustdistill.theory.simulators.slam_checks`: SLaM, S0 (identities) and S1 (consistency)
  (``docs/theory/slam.md#slam-simulators``).
- :mod:`~robustdistill.theory.simulators.halfspace_checks`: SLaM, S2 (sample complexity on margin halfspaces under
  RCN, the Long-Servedio separation) and S3 (convergence of forward adjustment) (``docs/theory/halfspace.md#halfspace-checks``).
- :mod:`~robustdistill.theory.simulators.rad_selection_checks`: RAD vs margin (greedy top-b) and uniform selection under
  gain-correlated teacher mistakes, R1-R4 (``docs/theory/rad.md#rad-selection-checks``); group ``rad``, registered last.

Every check is deterministic given ``rng`` (default seed 0): each gets its own child stream, so a
check's result does not depend on which checks ran before it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from robustdistill.algorithms.typing import RNGLike
from robustdistill.algorithms.validation import check_rng

from .checks import GROUPS, Check, CheckResult

__all__ = ["CHECKS", "GROUPS", "Check", "CheckResult", "SPEC_GAINS", "random_game", "run_checks"]

#: The modules whose ``CHECKS`` make up :data:`CHECKS`, in order. New checks go at the end, so that check ``i``
#: keeps its child stream ``i`` (rad_selection_checks came after the halfspace checks). They are imported on
#: first use of :data:`CHECKS` (``GROUPS`` and :mod:`.checks` stay light for the command line).
CHECK_MODULES = ("rad_checks", "weighted_checks", "slam_checks", "halfspace_checks", "rad_selection_checks")


def __getattr__(name: str) -> Any:
    if name == "CHECKS":  # every registered check, in the order `verify` prints them
        checks = [c for module in CHECK_MODULES for c in importlib.import_module(f"{__name__}.{module}").CHECKS]
        globals()["CHECKS"] = checks
        return checks
    if name in ("SPEC_GAINS", "random_game"):
        return getattr(importlib.import_module(f"{__name__}.rad_checks"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def run_checks(
    quick: bool = True,
    *,
    rng: RNGLike = 0,
    progress: bool = False,
    only: Sequence[str] | None = None,
) -> list[CheckResult]:
    """Run the simulators and return one :class:`CheckResult` per claim.

    Args:
        quick: small sizes (seconds); ``False`` runs the full sizes (e.g. 800 LP instances and 10^5
            DepRound draws for RAD, 4·10^5 samples for the Weighted Distillation lemmas).
        rng: seed or Generator. Check ``i`` of :data:`CHECKS` always gets child stream ``i``.
        progress: show a tqdm progress bar over the checks.
        only: method groups to run (a subset of :data:`GROUPS`); default all.
    """
    from tqdm.auto import tqdm

    if only is not None:
        unknown = sorted(set(only) - set(GROUPS))
        if unknown:
            raise ValueError(f"only must name groups among {GROUPS}, got {unknown}")
    gen = check_rng(rng)
    registered: list[Check] = __getattr__("CHECKS")
    streams = gen.spawn(len(registered))
    selected = [(c, s) for c, s in zip(registered, streams) if only is None or c.group in only]
    results = []
    for check, stream in tqdm(selected, desc="verify", disable=not progress, leave=False):
        results.append(check.run(stream, check.quick if quick else check.full))
    return results
