"""Registers the ensemble policies with clipper (entry point group ``clipper``)."""

from __future__ import annotations

from clipper_core import hookimpl
from clipper_core.interfaces import SelectionPolicy


@hookimpl
def clipper_register_policies() -> list[type[SelectionPolicy]]:
    from clipper_policy_ensemble import Exp4, KAgree, MajorityVote, Mean, WeightedVote

    return [Exp4, Mean, MajorityVote, WeightedVote, KAgree]
