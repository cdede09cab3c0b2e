"""Every bandit policy this plugin registers against the policy contract."""

from __future__ import annotations

import pytest
from clipper_policy_bandits.hooks import clipper_register_policies

from clipper_core.interfaces import SelectionPolicy
from clipper_core.testing import PolicyContract

POLICIES = clipper_register_policies()


class TestBanditPolicies(PolicyContract):
    refuses_unknown_config = True

    @pytest.fixture(params=POLICIES, ids=[cls.name for cls in POLICIES])
    def policy_class(self, request: pytest.FixtureRequest) -> type[SelectionPolicy]:
        cls: type[SelectionPolicy] = request.param
        return cls

    def answers_without_predictions(self, policy: SelectionPolicy) -> bool:
        return True  # Bandit.combine: the app's default output when the chosen model did not answer
