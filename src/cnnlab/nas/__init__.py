"""Neural architecture search, small but real: search spaces, random search and a REINFORCE controller.

Lecture 004's NAS (Zoph & Le 2017; NASNet, Zoph et al. 2018): a controller samples an
architecture, the child network is trained and its validation accuracy is the reward, the
controller is updated by policy gradient. :func:`run_search` runs it (and random search
with the same budget) over :class:`CellSpace` or :class:`MacroSpace`, every child trained
by the project's Trainer; ``cnnlab nas`` is its command line.
"""
from .controller import Controller, Reinforce
from .search import SEARCHERS, child_config, read_results, retrain, run_search
from .space import CELL_SEARCH_OPS, SPACES, CellSpace, Decision, MacroSpace, SearchSpace, make_space

__all__ = [
           "CELL_SEARCH_OPS",
           "SEARCHERS",
           "SPACES",
           "CellSpace",
           "Controller",
           "Decision",
           "MacroSpace",
           "Reinforce",
           "SearchSpace",
           "child_config",
           "make_space",
           "read_results",
           "retrain",
           "run_search",
]
