"""Rules for the names people give things (namespaces, users, models, experiments)."""

from __future__ import annotations

import re

from shipyard.errors import InvalidInput

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_PRINCIPAL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._@-]{0,253}[A-Za-z0-9])?$")
_RECORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:@+-]{0,254}$")
_RECORD_WITH_SLASH = re.compile(r"^[A-Za-z0-9/][A-Za-z0-9 ._/:@+-]{0,254}$")


def dns_label(value: object, what: str, example: str) -> str:
    """A name that is a DNS label, so it maps onto a Kubernetes object name unchanged."""
    if not isinstance(value, str) or not _DNS_LABEL.match(value):
        raise InvalidInput(
            f"{what} {value!r} is not valid: expected 1-63 lowercase letters, digits "
            f"or '-', starting and ending with a letter or digit (e.g. {example!r})"
        )
    return value


def namespace_name(value: str) -> str:
    return dns_label(value, "namespace name", "team-a")


def principal_name(value: str) -> str:
    if not isinstance(value, str) or not _PRINCIPAL.match(value):
        raise InvalidInput(
            f"name {value!r} is not valid: expected letters, digits, '.', '_', '@' or '-' (e.g. 'alice' or 'alice@example.com')"
        )
    return value


def record_name(value: str, what: str, *, allow_slash: bool = False) -> str:
    pattern = _RECORD_WITH_SLASH if allow_slash else _RECORD
    if not isinstance(value, str) or not pattern.match(value) or value != value.strip():
        extra = " /" if allow_slash else ""
        raise InvalidInput(
            f"{what} name {value!r} is not valid: expected 1-255 characters, starting with a letter "
            f"or digit, then letters, digits, spaces or . _ : @ + -{extra}"
        )
    return value
