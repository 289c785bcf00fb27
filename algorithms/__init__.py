"""Practical methods: numpy data-level steps and torch per-example losses.

Modules:

- :mod:`~robustdistill.algorithms.rad`: Robust Active Distillation (the query game, DepRound, m).
- :mod:`~robustdistill.algorithms.teacher_quality`: teacher-accuracy estimates from the validation set
  (isotonic alpha(x), binned intervals, SLaM's k, RAD's m, the transition matrix).
- :mod:`~robustdistill.algorithms.weighting`: Weighted Distillation's per-example weights and debiased
  targets.
- :mod:`~robustdistill.algorithms.slam`: SLaM's mixing operation (numpy reference) and top-k mask.
- :mod:`~robustdistill.algorithms.losses`: per-example torch losses (soft CE, KD, SLaM, forward/backward
  correction, Taylor-CE).
"""
