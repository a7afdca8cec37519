"""System checks for the idempotency settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.test import override_settings

from tracing_app.checks.idempotency import MIDDLEWARE_PATH
from tracing_app.conf import app_settings


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


def test_mode_must_be_known() -> None:
    assert "tracing_app.E409" in ids(IDEMPOTENCY_MODE="atomic")
    assert "tracing_app.E409" not in ids(IDEMPOTENCY_MODE="lease")
    assert "tracing_app.E404" in ids(IDEMPOTENCY_LOCK_TIMEOUT=0)


def test_scope_function_must_import() -> None:
    assert "tracing_app.E405" in ids(IDEMPOTENCY_SCOPE="tests.idempotency.scopes.missing")
    assert "tracing_app.E405" not in ids(IDEMPOTENCY_SCOPE="tests.idempotency.scopes.api_client")


def check_urls(**idempotency: Any) -> list[Any]:
    with override_settings(
        ROOT_URLCONF="tests.idempotency.check_urls",
        TRACING_APP={**app_settings.user_settings(), **idempotency},
    ):
        return [message for message in run_checks() if message.id.startswith("tracing_app.")]


def test_views_entry_naming_no_view_suggests_close_names() -> None:
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, MIDDLEWARE_PATH]):
        found = {message.id: message for message in check_urls(IDEMPOTENCY_VIEWS=["effects-list"])}
        assert "tracing_app.E406" in found
        assert "'effect-list'" in found["tracing_app.E406"].hint
        names = ["effect-list", "tests.idempotency.views.UnguardedEffectViewSet"]
        assert "tracing_app.E406" not in {message.id for message in check_urls(IDEMPOTENCY_VIEWS=names)}


def test_views_entry_naming_an_async_view_cannot_be_guarded() -> None:
    with override_settings(MIDDLEWARE=[*settings.MIDDLEWARE, MIDDLEWARE_PATH]):
        assert "tracing_app.E407" in {message.id for message in check_urls(IDEMPOTENCY_VIEWS=["idem-async"])}


def test_guarded_view_open_to_anonymous_clients_without_a_rule() -> None:
    warned = [message for message in check_urls() if message.id == "tracing_app.W408"]
    assert len(warned) == 1
    assert "open-effect-list" in warned[0].msg
    scoped = check_urls(IDEMPOTENCY_SCOPE="tests.idempotency.scopes.api_client")
    assert "tracing_app.W408" not in {message.id for message in scoped}
