"""Exact references, bounds and simulators that check the algorithms' guarantees.

Modules: :mod:`~robustdistill.theory.query_game` (the LP reference of the RAD query game),
:mod:`~robustdistill.theory.simulators` (``run_checks`` over the registered checks of
:mod:`~robustdistill.theory.simulators.rad_checks`, :mod:`~robustdistill.theory.simulators.weighted_checks` and
:mod:`~robustdistill.theory.simulators.slam_checks`; the common :class:`~robustdistill.theory.simulators.checks.CheckResult`).
"""
