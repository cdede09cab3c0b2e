"""PolicyContract: the behaviour every :class:`~clipper_core.interfaces.SelectionPolicy` must have.

A policy package subclasses it in one of its test modules (with a ``Test`` name) and lists its policies in
``policies`` (every test then runs once per policy), or overrides the ``policy_class`` fixture::

    from clipper_core.testing import PolicyContract

    class TestMyPolicies(PolicyContract):
        policies = (FirstModel, Vote)
        refuses_unknown_config = True        # the policies check their config keys

The tests drive a policy the way the query path does: ``state`` is ``initial_state(linked)`` for a policy that
``needs_state`` (and None for one that does not), ``select`` gets the linked models (never more than
``max_models``), ``combine`` gets the outputs of the selected models that answered, ``observe`` gets a numeric
label, and the state goes through ``dumps_state``/``loads_state`` between calls. Override the ``app`` fixture
(and :meth:`PolicyContract.query_input`) for a policy that needs another input type, ``config`` for one that
needs a config. The tests are synchronous; this module imports only pytest and numpy.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from clipper_core.inputs import InputType
from clipper_core.interfaces import Query, SelectionPolicy
from clipper_core.state.records import Application

__all__ = ["PolicyContract"]

LINKED = ["model-a", "model-b", "model-c"]
ROUNDS = 8
"""Queries (and feedbacks) per test: enough to exercise a policy's random choices, cheap for any policy."""


def _linked(policy_class: type[SelectionPolicy]) -> list[str]:
    """What an app may link under this policy (the management API refuses more than ``max_models``)."""
    limit = policy_class.max_models
    return LINKED if limit is None else LINKED[:limit]


def _outputs(models: list[str], round_: int) -> dict[str, str]:
    """Model outputs as Clipper models answer (text), the models disagreeing from one round to the next."""
    return {m: f"{float((i + round_) % 2)}" for i, m in enumerate(models)}


def _roundtrip(policy: SelectionPolicy, state: Any) -> Any:
    data = policy.dumps_state(state)
    assert isinstance(data, bytes), f"dumps_state returned {type(data).__name__}, not bytes"
    loaded = policy.loads_state(data)
    assert policy.dumps_state(loaded) == data, "loads_state then dumps_state changed the stored state"
    return loaded


class PolicyContract:
    """Construction, config checks, select, combine, state round trips and ``needs_state``."""

    refuses_unknown_config: ClassVar[bool] = False
    """True when the policy refuses config keys it does not read (the bandit and ensemble policies do, through
    :func:`clipper_core.policies.config.check_keys`). Else an unknown key may be ignored; if it is refused, the
    error must still be a ValueError naming it."""

    policies: ClassVar[tuple[type[SelectionPolicy], ...]] = ()
    """The policies held to the contract, each test once per policy (or override ``policy_class``)."""

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if self.policies and "policy_class" in metafunc.fixturenames:
            metafunc.parametrize("policy_class", self.policies, ids=[cls.name for cls in self.policies])

    @pytest.fixture
    def policy_class(self) -> type[SelectionPolicy]:
        raise NotImplementedError("list the policies in 'policies' or override the 'policy_class' fixture")

    @pytest.fixture
    def app(self) -> Application:
        return Application("contract-app", InputType.DOUBLES, "-1.0", 100_000)

    @pytest.fixture
    def config(self) -> dict[str, Any]:
        """A valid ``policy_config`` for the policy under test."""
        return {}

    @pytest.fixture
    def policy(self, policy_class: type[SelectionPolicy], app: Application, config: dict[str, Any]
               ) -> SelectionPolicy:
        return policy_class(app, config)

    def query_input(self, i: int) -> Any:
        """The decoded input of query ``i``, as the query path hands it over (a doubles vector by default)."""
        return np.array([float(i % 3), 1.0, -0.5])

    def answers_without_predictions(self, policy: SelectionPolicy) -> bool:
        """Whether ``policy.combine`` with no predictions gives the default answer (``is_default`` True and an
        explanation). The query path never asks, it answers the app's default output itself when no model
        answered, so a policy is held to this only when its test says so (override to return True)."""
        return False

    def _query(self, i: int, uid: int = 0) -> Query:
        return Query("contract-app", uid, self.query_input(i), i)

    @staticmethod
    def _state(policy: SelectionPolicy, models: list[str]) -> Any:
        return policy.initial_state(list(models)) if policy.needs_state else None

    # -- construction ---------------------------------------------------------------------------------
    def test_constructed_from_the_app_and_its_config(self, policy_class: type[SelectionPolicy], app: Application,
                                                     config: dict[str, Any]) -> None:
        assert isinstance(policy_class.name, str) and policy_class.name
        assert policy_class.max_models is None or policy_class.max_models >= 1
        assert isinstance(policy_class.needs_state, bool)
        given = dict(config)
        policy = policy_class(app, given)
        assert policy.app is app and policy.config == config
        given["changed-later"] = 1  # the policy keeps its own copy
        assert policy.config == config
        if not config:  # no config at all is the same as an empty one
            assert policy_class(app).config == policy_class(app, None).config == {}

    def test_a_config_key_it_does_not_read(self, policy_class: type[SelectionPolicy], app: Application,
                                           config: dict[str, Any]) -> None:
        unknown = {**config, "no-such-key": 1}
        if self.refuses_unknown_config:
            with pytest.raises(ValueError, match="no-such-key"):
                policy_class(app, unknown)
            return
        try:
            policy_class(app, unknown)
        except ValueError as exc:
            assert "no-such-key" in str(exc), f"the error does not name the key: {exc}"

    # -- the query path -------------------------------------------------------------------------------
    def test_select_returns_some_of_the_linked_models(self, policy: SelectionPolicy) -> None:
        models = _linked(type(policy))
        state = self._state(policy, models)
        for i in range(ROUNDS):
            chosen = policy.select(state, self._query(i, uid=i % 2), list(models))
            assert isinstance(chosen, list) and set(chosen) <= set(models), chosen
            assert len(chosen) == len(set(chosen)), f"a model selected twice: {chosen}"
            assert policy.max_models is None or len(chosen) <= policy.max_models
        assert policy.select(self._state(policy, []), self._query(0), []) == []  # an app with nothing linked

    def test_combine_answers_with_the_outputs(self, policy: SelectionPolicy) -> None:
        models = _linked(type(policy))
        state = self._state(policy, models)
        for i in range(ROUNDS):
            query = self._query(i)
            chosen = policy.select(state, query, list(models))
            if not chosen:
                continue
            _output, is_default, why = policy.combine(state, query, dict.fromkeys(chosen, "1.0"))
            assert is_default is False, f"a default answer although every selected model agreed: {why}"
            _output, is_default, why = policy.combine(state, query, _outputs(chosen, i))  # they may disagree
            assert isinstance(is_default, bool) and isinstance(why, str)

    def test_combine_without_predictions_gives_the_default(self, policy: SelectionPolicy) -> None:
        if not self.answers_without_predictions(policy):
            pytest.skip(f"{type(policy).__name__}.combine is not asked without predictions (only the query path "
                        "calls it, with at least one)")
        state = self._state(policy, _linked(type(policy)))
        _output, is_default, why = policy.combine(state, self._query(0), {})
        assert is_default is True
        assert isinstance(why, str) and why, "a default answer must say why"

    # -- state ----------------------------------------------------------------------------------------
    def test_initial_state_round_trips(self, policy: SelectionPolicy) -> None:
        _roundtrip(policy, policy.initial_state(_linked(type(policy))))
        _roundtrip(policy, policy.initial_state([]))

    def test_observe_returns_a_state_that_is_stored_and_used_again(self, policy: SelectionPolicy) -> None:
        models = _linked(type(policy))
        state = self._state(policy, models)
        for i in range(ROUNDS):
            query = self._query(i, uid=7)
            chosen = policy.select(state, query, list(models))
            outputs = _outputs(chosen, i)
            policy.combine(state, query, outputs)
            state = _roundtrip(policy, policy.observe(state, query, float(i % 2), outputs))
        assert set(policy.select(state, self._query(0, uid=7), list(models))) <= set(models)

    def test_needs_state_says_whether_feedback_changes_the_state(self, policy: SelectionPolicy) -> None:
        models = _linked(type(policy))
        state = policy.initial_state(list(models))
        before = policy.dumps_state(state)
        for i in range(ROUNDS):
            query = self._query(i)
            outputs = _outputs(policy.select(state, query, list(models)) or models, i)
            state = policy.observe(state, query, float(i % 2), outputs)
        learned = policy.dumps_state(state) != before
        assert learned is policy.needs_state, (
            f"needs_state is {policy.needs_state}, but {ROUNDS} feedbacks {'did' if learned else 'did not'} "
            "change the state")
