"""Idempotency keys: the client's header, who the client is, and the deterministic record key.

A record is keyed on ``derive_id(scope, operation, client key)``, so every process derives the same key
for the same logical operation, and two clients using the same key never meet: the scope is the
authenticated principal (or an anonymous client's session), never a raw credential such as the
``Authorization`` header (which changes when a token is refreshed while the principal stays the same),
nor the client address (which clients behind one proxy share).
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Any

from django.http import HttpRequest
from django.utils.module_loading import import_string

from tracing_app.conf import app_settings
from tracing_app.ids import derive_id

NAMESPACE = "tracing_app.idempotency"

# RFC 8941 sf-string: printable ASCII, with only \" and \\ escaped.
_SF_STRING = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_SF_ESCAPE = re.compile(r'\\(["\\])')
# RFC 8941 sf-token characters (RFC 9110 tchar plus ":" and "/"), but any of them may come first, so the
# bare UUIDs many clients send are accepted too.
_BARE_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~:/-]+")


class InvalidKey(ValueError):
    """The ``Idempotency-Key`` header is malformed or too long; the message says which."""


def parse_client_key(raw: str) -> str:
    """The client key in a header value: a Structured Field string (``"abc"``) or a bare token (``abc``).

    Raises :class:`InvalidKey` for anything else: an empty key, parameters or lists, characters outside
    printable ASCII, or more than ``IDEMPOTENCY_KEY_MAX_LENGTH`` characters.
    """
    value = raw.strip(" \t")
    quoted = _SF_STRING.fullmatch(value)
    if quoted:
        key = _SF_ESCAPE.sub(r"\1", quoted.group(1))
    elif _BARE_TOKEN.fullmatch(value):
        key = value
    else:
        raise InvalidKey(
            f'{app_settings.IDEMPOTENCY_HEADER} must be a quoted string ("...") or a token of printable '
            "ASCII characters, with no parameters or lists."
        )
    limit = app_settings.IDEMPOTENCY_KEY_MAX_LENGTH
    if not key:
        raise InvalidKey(f"{app_settings.IDEMPOTENCY_HEADER} is empty.")
    if len(key) > limit:
        raise InvalidKey(f"{app_settings.IDEMPOTENCY_HEADER} is {len(key)} characters long; at most {limit}.")
    return key


def principal_scope(request: HttpRequest) -> str | None:
    """Who is asking, as a stable string: the key space one client's keys live in; None if unknown.

    ``IDEMPOTENCY_SCOPE`` (a function of the request) decides when set. Otherwise: the tenant when the
    request carries one (``request.tenant``), then the authenticated user's primary key, or for an
    anonymous request its session key. An anonymous request without a session has no scope: its key is
    refused rather than shared with every client behind the same address.
    """
    custom = app_settings.IDEMPOTENCY_SCOPE
    if custom:
        scope_of = _imported(custom) if isinstance(custom, str) else custom
        return f"custom:{scope_of(request)}"
    parts = []
    tenant = getattr(request, "tenant", None)
    if tenant is not None:
        parts.append(f"tenant:{getattr(tenant, 'pk', tenant)}")
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        parts.append(f"user:{user.pk}")
    else:
        session_key = getattr(getattr(request, "session", None), "session_key", None)
        if not session_key:
            return None
        parts.append(f"session:{session_key}")
    return "/".join(parts)


@functools.lru_cache(maxsize=8)
def _imported(path: str) -> Any:
    # Imported once, not per request (a settings change names another path, so another entry).
    return import_string(path)


@functools.lru_cache(maxsize=256)
def record_key(scope: str, operation: str, client_key: str) -> str:
    """The record's primary key: the same (scope, operation, client key) gives the same key everywhere.
    Kept for the last keys seen: a request asks for its key twice (the replay lookup, then the claim)."""
    return derive_id(NAMESPACE, scope, operation, client_key)


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """What a repeat must match to be replayed: method, path with query string, and the raw body."""
    return derive_id(f"{NAMESPACE}.request", method, path, hashlib.sha256(body).hexdigest())


def call_fingerprint(args: Any, kwargs: Any) -> str:
    """What a repeated task call must match: its arguments (JSON-friendly values only)."""
    return derive_id(f"{NAMESPACE}.call", args, kwargs)
