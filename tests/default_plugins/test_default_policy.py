"""Clipper's default policy against the policy contract."""

from __future__ import annotations

import pytest

from clipper_core.default_plugins.default_policy import DefaultPolicy
from clipper_core.interfaces import SelectionPolicy
from clipper_core.testing import PolicyContract


class TestDefaultPolicy(PolicyContract):
    refuses_unknown_config = False  # it reads no config, and has always accepted (and ignored) any

    @pytest.fixture
    def policy_class(self) -> type[SelectionPolicy]:
        return DefaultPolicy

    def answers_without_predictions(self, policy: SelectionPolicy) -> bool:
        return True  # the app's default output, "No connected models found for query"
