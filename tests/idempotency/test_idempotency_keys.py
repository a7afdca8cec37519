"""Scopes and deterministic keys (header parsing is covered through the views in test_idempotency_http)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory

from tracing_app.idempotency.keys import call_fingerprint, principal_scope, record_key, request_fingerprint


def request(user: object = None, tenant: object = None, session: str | None = None) -> object:
    built = RequestFactory().post("/", REMOTE_ADDR="10.1.2.3")
    built.user = user or AnonymousUser()
    built.session = SimpleNamespace(session_key=session)
    if tenant is not None:
        built.tenant = tenant
    return built


def test_keys_are_the_same_in_every_process_and_release() -> None:
    # Known answers: a salted or repr-based hash would change between processes and break every key.
    assert record_key("user:1", "http", "order-1") == "3BYC0MNYVGZAG03J68PT02B4Q1"
    assert request_fingerprint("POST", "/orders/?a=1", b"{}") == "4A9S66JHEBB22F77W22HH82Y23"
    assert call_fingerprint([1], {"a": 2}) == "7MX4DKH3X1B1NEERA0P7A4G9M0"


def test_each_part_of_a_key_matters() -> None:
    keys = {
        record_key("user:1", "http", "k"),
        record_key("user:2", "http", "k"),
        record_key("user:1", "orders", "k"),
        record_key("user:1", "http", "k2"),
    }
    assert len(keys) == 4
    assert request_fingerprint("POST", "/a/", b"x") != request_fingerprint("PUT", "/a/", b"x")
    assert request_fingerprint("POST", "/a/", b"x") != request_fingerprint("POST", "/a/?q=1", b"x")
    assert request_fingerprint("POST", "/a/", b"x") != request_fingerprint("POST", "/a/", b"y")


@pytest.mark.parametrize(
    ("kwargs", "scope"),
    [
        ({"user": SimpleNamespace(is_authenticated=True, pk=7)}, "user:7"),
        ({"session": "s3ss10n"}, "session:s3ss10n"),
        ({}, None),
        (
            {"tenant": SimpleNamespace(pk="acme"), "user": SimpleNamespace(is_authenticated=True, pk=7)},
            "tenant:acme/user:7",
        ),
        ({"tenant": "acme", "session": "s3ss10n"}, "tenant:acme/session:s3ss10n"),
    ],
)
def test_scope_is_the_principal(kwargs: dict[str, object], scope: str | None) -> None:
    assert principal_scope(request(**kwargs)) == scope


def test_credentials_never_enter_the_scope() -> None:
    built = request(user=SimpleNamespace(is_authenticated=True, pk=7))
    built.META["HTTP_AUTHORIZATION"] = "Bearer refreshed-token"
    assert principal_scope(built) == "user:7"
