"""Every bandit policy this plugin registers against the policy contract."""

from __future__ import annotations

from clipper_policy_bandits.hooks import clipper_register_policies

from clipper_core.interfaces import SelectionPolicy
from clipper_core.testing import PolicyContract

POLICIES = clipper_register_policies()


class TestBanditPolicies(PolicyContract):
    policies = tuple(POLICIES)
    refuses_unknown_config = True

    def answers_without_predictions(self, policy: SelectionPolicy) -> bool:
        return True  # Bandit.combine: the app's default output when the chosen model did not answer
