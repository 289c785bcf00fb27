"""Robust Active Distillation (Baykal et al., ICLR 2023): which unlabeled points to pay the teacher for.

The public entry points of the method (DESIGN.md's API contract):

- :func:`solve_query_game` -- the exact minimax query game (our formulation of the paper's game).
- :func:`depround` -- the paper's Algorithm 2 (DEPROUND), tree-vectorized (our formulation).
"""

from .depround import depround
from .query_game import QueryGameSolution, solve_query_game

__all__ = ["QueryGameSolution", "depround", "solve_query_game"]
