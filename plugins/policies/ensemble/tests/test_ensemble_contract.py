"""Every ensemble policy this plugin registers against the policy contract."""

from __future__ import annotations

import pytest
from clipper_policy_ensemble import Exp4, Mean
from clipper_policy_ensemble.hooks import clipper_register_policies

from clipper_core.interfaces import SelectionPolicy
from clipper_core.testing import PolicyContract

POLICIES = clipper_register_policies()


class TestEnsemblePolicies(PolicyContract):
    refuses_unknown_config = True

    @pytest.fixture(params=POLICIES, ids=[cls.name for cls in POLICIES])
    def policy_class(self, request: pytest.FixtureRequest) -> type[SelectionPolicy]:
        cls: type[SelectionPolicy] = request.param
        return cls

    def answers_without_predictions(self, policy: SelectionPolicy) -> bool:
        # The means answer the default output when no number arrived; the votes (majority, weighted, k-agree,
        # exp4 with the "match" reward) rank what arrived and raise on nothing, which the query path never asks.
        if isinstance(policy, Exp4):
            return policy.reward_kind != "match"
        return isinstance(policy, Mean)
