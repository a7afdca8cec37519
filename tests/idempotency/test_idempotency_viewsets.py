"""ViewSets on a router, guarded by the mixin, by ``@idempotent`` on an action, by wrapping
``as_view()`` and by ``IDEMPOTENCY_VIEWS`` naming the router's routes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from tests.idempotency.models import Effect
from tests.idempotency.test_idempotency_http import basic, error_code
from tracing_app.conf import app_settings

# PostgreSQL: there a guarded view's claim commits with the view (one-commit mode).
pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.urls("tests.idempotency.urls")]


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="pw")


def send(method: str, path: str, data: dict[str, Any] | None, key: str | None, user: str = "alice") -> Any:
    extra: dict[str, Any] = {"HTTP_AUTHORIZATION": basic(user)}
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    body = json.dumps(data) if data is not None else ""
    return Client().generic(method, path, body, content_type="application/json", **extra)


def labels(label: str) -> int:
    return Effect.objects.filter(label=label).count()


def test_mixin_guards_every_unsafe_action_of_a_model_viewset(alice: User) -> None:
    created = send("POST", "/effects/", {"label": "vs"}, "vs-create")
    assert created.status_code == 201, created.content
    again = send("POST", "/effects/", {"label": "vs"}, "vs-create")
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == created.content
    assert labels("vs") == 1
    assert error_code(send("POST", "/effects/", {"label": "other"}, "vs-create")) == "idempotency_key_reused"

    pk = created.json()["data"]["id"]
    for method, data in (("PUT", {"label": "vs", "note": "put"}), ("PATCH", {"note": "patched"})):
        first = send(method, f"/effects/{pk}/", data, f"vs-{method}")
        assert first.status_code == 200
        Effect.objects.filter(pk=pk).update(note="changed since")
        replay = send(method, f"/effects/{pk}/", data, f"vs-{method}")
        assert replay["Idempotent-Replayed"] == "true"
        assert Effect.objects.get(pk=pk).note == "changed since", "the repeat did not run the update"

    copied = send("POST", f"/effects/{pk}/copy/", None, "vs-copy")
    assert copied.status_code == 201
    assert send("POST", f"/effects/{pk}/copy/", None, "vs-copy")["Idempotent-Replayed"] == "true"
    assert labels("vs") == 2

    assert send("DELETE", f"/effects/{copied.json()['data']['id']}/", None, "vs-delete").status_code == 204
    deleted_again = send("DELETE", f"/effects/{copied.json()['data']['id']}/", None, "vs-delete")
    assert deleted_again.status_code == 204
    assert deleted_again["Idempotent-Replayed"] == "true"
    assert labels("vs") == 1


def test_decorator_on_viewset_actions_without_the_mixin(alice: User) -> None:
    missing = send("POST", "/action-effects/", {"label": "act"}, None)
    assert missing.status_code == 400
    assert error_code(missing) == "idempotency_key_missing"
    first = send("POST", "/action-effects/", {"label": "act"}, "act-1")
    assert first.status_code == 201
    assert send("POST", "/action-effects/", {"label": "act"}, "act-1")["Idempotent-Replayed"] == "true"
    assert labels("act") == 1

    # An @action with its own key space; a validation error is an outcome, stored and replayed.
    refused = send("POST", "/action-effects/batch/", {"labels": []}, "act-1")
    assert refused.status_code == 400
    assert error_code(refused) == "invalid"
    assert send("POST", "/action-effects/batch/", {"labels": []}, "act-1")["Idempotent-Replayed"] == "true"
    batch = send("POST", "/action-effects/batch/", {"labels": ["b1", "b2"]}, "act-2")
    assert batch.status_code == 201
    assert send("POST", "/action-effects/batch/", {"labels": ["b1", "b2"]}, "act-2").content == batch.content
    assert labels("b1") == labels("b2") == 1


def test_wrapping_a_viewsets_as_view(alice: User) -> None:
    assert send("POST", "/api/wrapped-viewset/", {"label": "wrapped"}, None).status_code == 400
    assert send("POST", "/api/wrapped-viewset/", {"label": "wrapped"}, "w-1").status_code == 201
    assert send("POST", "/api/wrapped-viewset/", {"label": "wrapped"}, "w-1")["Idempotent-Replayed"] == "true"
    assert labels("wrapped") == 1


def test_idempotency_views_names_the_routers_routes(alice: User) -> None:
    middleware = [*settings.MIDDLEWARE, "tracing_app.idempotency.middleware.IdempotencyMiddleware"]
    views = {"unguarded-effect-list": {"required": True}, "unguarded-effect-detail": {}}
    with override_settings(
        MIDDLEWARE=middleware, TRACING_APP={**app_settings.user_settings(), "IDEMPOTENCY_VIEWS": views}
    ):
        assert send("POST", "/unguarded-effects/", {"label": "routed"}, None).status_code == 400
        first = send("POST", "/unguarded-effects/", {"label": "routed"}, "r-1")
        assert first.status_code == 201
        assert (
            send("POST", "/unguarded-effects/", {"label": "routed"}, "r-1")["Idempotent-Replayed"] == "true"
        )
        pk = first.json()["data"]["id"]
        assert send("PATCH", f"/unguarded-effects/{pk}/", {"note": "n"}, "r-2").status_code == 200
        assert (
            send("PATCH", f"/unguarded-effects/{pk}/", {"note": "n"}, "r-2")["Idempotent-Replayed"] == "true"
        )
        # Reads pass through the router's view untouched.
        assert send("GET", "/unguarded-effects/", None, None).status_code == 200
    assert labels("routed") == 1
