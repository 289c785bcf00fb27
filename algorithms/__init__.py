"""Practical methods: numpy data-level steps and torch per-example losses.

Modules: :mod:`~robustdistill.algorithms.rad` (Robust Active Distillation: the query game and DepRound).
"""
