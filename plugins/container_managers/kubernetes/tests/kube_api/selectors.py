"""Label and field selectors: parsing ``labelSelector``/``fieldSelector`` query parameters into
:class:`Requirement` terms, matching them against labels and objects, and the :class:`Selection` a
list, watch or deletecollection request asks for.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import kmock

from .errors import bad_request
from .names import label_value_errors, qualified_name_errors
from .resources import FIELD_SELECTABLE, ResourceType
from .util import _dig, _labels, _meta


@dataclasses.dataclass(frozen=True)
class Requirement:
    """One term of a selector: ``key op values``; op is one of = != in notin exists !exists."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        present = self.key in fields
        value = fields.get(self.key)
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":  # like the real server: absence of the key matches "!=" and "notin"
                return not present or value not in self.values
        raise AssertionError(self.op)


LABEL_TERM = re.compile(r"\s*(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,()]*)\s*")
SET_TERM = re.compile(r"\s*(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*")
EXISTS_TERM = re.compile(r"\s*(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)\s*")


def _split_terms(selector: str) -> list[str]:
    """Split on the commas that are not inside ``( )``."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [] if selector.strip() == "" else terms


def _parse_label_term(term: str) -> Requirement:
    if match := SET_TERM.fullmatch(term):
        if not match["values"].strip():
            raise ValueError(f"for 'in', 'notin' operators, values set can't be empty: {term.strip()!r}")
        values = tuple(v.strip() for v in match["values"].split(","))
        requirement = Requirement(match["key"], "in" if match["op"] == "in" else "notin", values)
    elif match := LABEL_TERM.fullmatch(term):
        requirement = Requirement(match["key"], "!=" if match["op"] == "!=" else "=", (match["value"],))
    elif match := EXISTS_TERM.fullmatch(term):
        requirement = Requirement(match["key"], "!exists" if match["neg"] else "exists")
    else:
        raise ValueError(f"unable to parse requirement: {term.strip()!r}")
    if errors := qualified_name_errors(requirement.key):
        raise ValueError(f"invalid label key {requirement.key!r}: {errors[0]}")
    for value in requirement.values:
        if errors := label_value_errors(value):
            raise ValueError(f"invalid label value: {value!r}: {errors[0]}")
    return requirement


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Parse ``k=v,k==v,k!=v,k in (a,b),k notin (a,b),k,!k``; raise ValueError when malformed."""
    return [_parse_label_term(term) for term in _split_terms(selector or "")]


def label_selector_matches(requirements: list[Requirement], labels: Mapping[str, str]) -> bool:
    return all(requirement.matches(labels) for requirement in requirements)


FIELD_TERM = re.compile(r"\s*(?P<key>[A-Za-z0-9_.]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^,]*?)\s*")


def parse_field_selector(selector: str | None, allowed: frozenset[str]) -> list[Requirement]:
    """Parse ``field=value,field==value,field!=value``; raise ValueError when malformed or not supported."""
    requirements = []
    for term in _split_terms(selector or ""):
        match = FIELD_TERM.fullmatch(term)
        if not match:
            raise ValueError(f"invalid selector: '{selector}'; can't understand '{term.strip()}'")
        if match["key"] not in allowed:
            raise ValueError(f'field label not supported: {match["key"]}')
        requirements.append(Requirement(match["key"], "!=" if match["op"] == "!=" else "=", (match["value"],)))
    return requirements


def field_selector_matches(requirements: list[Requirement], obj: Mapping[str, Any]) -> bool:
    for requirement in requirements:
        actual = _dig(obj, requirement.key)
        actual_text = "" if actual is None else (str(actual).lower() if isinstance(actual, bool) else str(actual))
        if (actual_text == requirement.values[0]) != (requirement.op == "="):
            return False
    return True


@dataclasses.dataclass(frozen=True)
class Selection:
    """What a list/watch/deletecollection asks for: a namespace (or all), selectors, maybe one name."""

    namespace: str | None
    labels: list[Requirement]
    fields: list[Requirement]
    name: str | None = None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        meta = _meta(obj)
        return ((self.namespace is None or meta.get("namespace") == self.namespace)
                and (self.name is None or meta.get("name") == self.name)
                and label_selector_matches(self.labels, _labels(obj))
                and field_selector_matches(self.fields, obj))


def selection_of(rt: ResourceType, request: kmock.Request) -> Selection:
    allowed = frozenset({"metadata.name", "metadata.namespace"}) | FIELD_SELECTABLE.get(rt.plural, frozenset())
    try:
        labels = parse_label_selector(request.params.get("labelSelector"))
        fields = parse_field_selector(request.params.get("fieldSelector"), allowed)
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return Selection(request.namespace, labels, fields, request.name)
