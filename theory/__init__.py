"""Exact references, bounds and simulators that check the algorithms' guarantees.

Modules: :mod:`~robustdistill.theory.query_game` (the LP reference of the RAD query game),
:mod:`~robustdistill.theory.simulators` (``run_checks``).
"""
