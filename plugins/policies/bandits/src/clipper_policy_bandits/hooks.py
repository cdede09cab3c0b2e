"""Registers the bandit policies with clipper (entry point group ``clipper``)."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import SelectionPolicy


@hookimpl
def clipper_register_policies() -> list[type[SelectionPolicy]]:
    from clipper_policy_bandits import UCB1, EpsilonGreedy, Exp3, LinUCB, ThompsonBernoulli, ThompsonGaussian

    return [Exp3, EpsilonGreedy, UCB1, ThompsonBernoulli, ThompsonGaussian, LinUCB]
