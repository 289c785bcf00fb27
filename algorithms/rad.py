"""Robust Active Distillation (Baykal et al., ICLR 2023): which unlabeled points to pay the teacher for.

The public entry points of the method (DESIGN.md's API contract):

- :func:`solve_query_game` -- the exact minimax query game (our formulation of the paper's game).
- :func:`depround` -- the paper's Algorithm 2 (DEPROUND), tree-vectorized (our formulation).
- :func:`informativeness` -- gains in [0, 1] (margin, entropy, least confidence), and :func:`select` --
  gains -> game -> DepRound, returning a :class:`Selection` (with ``diagnostics``); both live in
  :mod:`~robustdistill.algorithms.selection` with the baselines (``SELECTORS``). :func:`select` warns
  :class:`NearUniformWarning` when its law is effectively uniform (uniform sampling guarantees at least
  ``NEAR_UNIFORM_RATIO`` of the game's value).
- :func:`estimate_mistakes` -- the number m of teacher mistakes on the pool, from the validation set
  (the paper estimates m from a validation set (paper); the formula is our formulation). It lives in
  :mod:`~robustdistill.algorithms.teacher_quality` with the rest of the teacher-accuracy logic.
"""

from .depround import depround
from .query_game import QueryGameSolution, solve_query_game
from .selection import NEAR_UNIFORM_RATIO, NearUniformWarning, Selection, informativeness, select
from .teacher_quality import estimate_mistakes

__all__ = [
    "NEAR_UNIFORM_RATIO",
    "NearUniformWarning",
    "QueryGameSolution",
    "Selection",
    "depround",
    "estimate_mistakes",
    "informativeness",
    "select",
    "solve_query_game",
]
