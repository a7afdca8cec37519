"""System checks for the idempotency settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from tracing_app.conf import app_settings
from tracing_app.idempotency.checks import MIDDLEWARE_PATH


def ids(**idempotency: Any) -> list[str]:
    with override_settings(TRACING_APP={**app_settings.user_settings(), **idempotency}):
        return [message.id for message in run_checks() if message.id.startswith("tracing_app.")]


def test_defaults_pass() -> None:
    assert not [found for found in ids() if found.startswith(("tracing_app.E4", "tracing_app.W4"))]


def test_unknown_database() -> None:
    assert "tracing_app.E401" in ids(IDEMPOTENCY_DATABASE="nowhere")


def test_views_listed_without_the_middleware() -> None:
    assert "tracing_app.E402" in ids(IDEMPOTENCY_VIEWS=["orders-list"])


def test_middleware_not_last() -> None:
    with override_settings(MIDDLEWARE=[MIDDLEWARE_PATH, *settings.MIDDLEWARE]):
        assert "tracing_app.W403" in ids(IDEMPOTENCY_VIEWS=["orders-list"])
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, MIDDLEWARE_PATH]):
        found = ids(IDEMPOTENCY_VIEWS=["orders-list"])
        assert "tracing_app.W403" not in found
        assert "tracing_app.E402" not in found


@pytest.mark.parametrize("value", [0, -5, "60", True, None])
def test_numbers_must_be_positive(value: Any) -> None:
    assert "tracing_app.E404" in ids(IDEMPOTENCY_LEASE=value)


def test_scope_function_must_import() -> None:
    assert "tracing_app.E405" in ids(IDEMPOTENCY_SCOPE="tests.idempotency.scopes.missing")
    assert "tracing_app.E405" not in ids(IDEMPOTENCY_SCOPE="tests.idempotency.scopes.api_client")
