"""Every ensemble policy this plugin registers against the policy contract."""

from __future__ import annotations

from clipper_policy_ensemble import Exp4, Mean
from clipper_policy_ensemble.hooks import clipper_register_policies

from clipper_core.interfaces import SelectionPolicy
from clipper_core.testing import PolicyContract

POLICIES = clipper_register_policies()


class TestEnsemblePolicies(PolicyContract):
    policies = tuple(POLICIES)
    refuses_unknown_config = True

    def answers_without_predictions(self, policy: SelectionPolicy) -> bool:
        # The means answer the default output when no number arrived; the votes (majority, weighted, k-agree,
        # exp4 with the "match" reward) rank what arrived and raise on nothing, which the query path never asks.
        if isinstance(policy, Exp4):
            return policy.reward_kind != "match"
        return isinstance(policy, Mean)
