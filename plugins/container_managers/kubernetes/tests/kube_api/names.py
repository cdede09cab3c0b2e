"""Syntax checks of names, label keys and values and annotations (DNS-1123 subdomains and labels, DNS-1035
labels, qualified names), answering the messages a real kube-apiserver gives; used by selector parsing and by
object validation.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FieldError

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character")
MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character")
MSG_DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
               "alphabetic character, and end with an alphanumeric character")
MSG_QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with "
                 "an alphanumeric character")


def dns_subdomain_errors(value: str) -> list[str]:
    errors = [] if DNS1123_SUBDOMAIN.fullmatch(value) else [MSG_SUBDOMAIN]
    return errors + (["must be no more than 253 characters"] if len(value) > 253 else [])


def dns_label_errors(value: str) -> list[str]:
    errors = [] if DNS1123_LABEL.fullmatch(value) else [MSG_LABEL]
    return errors + (["must be no more than 63 characters"] if len(value) > 63 else [])


def dns1035_label_errors(value: str) -> list[str]:
    errors = [] if DNS1035_LABEL.fullmatch(value) else [MSG_DNS1035]
    return errors + (["must be no more than 63 characters"] if len(value) > 63 else [])


def qualified_name_errors(key: str) -> list[str]:
    """Label and annotation keys: ``[prefix/]name`` with a DNS subdomain prefix and a 63-character name."""
    prefix, slash, name = key.rpartition("/")
    errors: list[str] = []
    if slash and not prefix:
        errors.append("prefix part must be non-empty")
    elif slash:
        errors += [f"prefix part {e}" for e in dns_subdomain_errors(prefix)]
    if not name:
        errors.append("name part must be non-empty")
    elif not QUALIFIED_NAME.fullmatch(name):
        errors.append(MSG_QUALIFIED)
    if len(name) > 63:
        errors.append("name part must be no more than 63 characters")
    return errors


def label_value_errors(value: Any) -> list[str]:
    if not isinstance(value, str):
        return ["must be a string"]
    errors = [] if value == "" or QUALIFIED_NAME.fullmatch(value) else [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
        "and must start and end with an alphanumeric character"]
    return errors + (["must be no more than 63 characters"] if len(value) > 63 else [])


def label_map_errors(labels: Any, field: str) -> list[FieldError]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [FieldError(field, "Invalid value: must be a map of strings")]
    errors: list[FieldError] = []
    for key, value in labels.items():
        errors += [FieldError(field, f'Invalid value: "{key}": {e}') for e in qualified_name_errors(key)]
        errors += [FieldError(field, f'Invalid value: "{value}": {e}') for e in label_value_errors(value)]
    return errors


def annotation_errors(annotations: Any) -> list[FieldError]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        return [FieldError("metadata.annotations", "Invalid value: must be a map of strings")]
    errors = [FieldError("metadata.annotations", f'Invalid value: "{key}": {e}')
              for key in annotations for e in qualified_name_errors(key)]
    size = sum(len(k) + len(str(v)) for k, v in annotations.items())
    if size > 256 * 1024:
        errors.append(FieldError("metadata.annotations", "Too long: must have at most 262144 bytes",
                                 "FieldValueTooLong"))
    return errors
