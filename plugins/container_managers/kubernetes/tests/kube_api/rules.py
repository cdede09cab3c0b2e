"""The admin token's deny list and one-shot error injection: a :class:`Rule` matching requests by verb, resource,
namespace and API group, and an :class:`InjectedFailure` answering a number of matching requests (of one user, or
of any) with an error.
"""

from __future__ import annotations

import dataclasses

import kmock


@dataclasses.dataclass(frozen=True)
class Rule:
    """Matches requests by verb, ``plural[/subresource]``, namespace (None: any) and API group."""

    verb: str
    resource: str
    namespace: str | None = None
    group: str = ""

    def matches(self, verb: str, resource: str, namespace: str | None, group: str) -> bool:
        return (self.verb in (verb, "*") and self.resource in (resource, "*") and self.group == group
                and (self.namespace is None or self.namespace == namespace))


@dataclasses.dataclass
class InjectedFailure:
    rule: Rule
    error: kmock.KubernetesError
    remaining: int
    user: str | None = None  # None: any user
