"""Exact references, bounds and simulators that check the algorithms' guarantees.

The library: :mod:`~robustdistill.theory.query_game` (the LP reference of the RAD query game),
:mod:`~robustdistill.theory.halfspace` (margin-halfspace data and learners under label noise),
:mod:`~robustdistill.theory.teacher_noise` (teacher-noise generators), :mod:`~robustdistill.theory.binary_slam`
(SLaM's binary forward-adjusted loss), :mod:`~robustdistill.theory.slam_risk` (the exact per-example minimiser
of SLaM's multiclass loss) and :mod:`~robustdistill.theory.selection_value` (what a selection rule gains from a
noisy teacher). The simulators, :mod:`~robustdistill.theory.simulators` (``run_checks`` over the
registered checks; the common :class:`~robustdistill.theory.simulators.checks.CheckResult`), use the library;
the library never imports them.
"""
