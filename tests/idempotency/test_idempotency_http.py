"""The HTTP layer: plain Django views, DRF views and the settings-driven middleware, on PostgreSQL."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.middleware.csrf import get_token
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext

from tests.idempotency.conftest import visitor
from tests.idempotency.models import Effect
from tracing_app.conf import app_settings
from tracing_app.idempotency.keys import principal_scope, record_key
from tracing_app.idempotency.models import IdempotencyRecord
from tracing_app.idempotency.store import Claim
from tracing_app.ids import new_id
from tracing_app.traces import recorder
from tracing_app.traces.models import TraceEvent

# PostgreSQL: there a guarded view's claim commits with the view (one-commit mode); SQLite's lease mode
# runs these again in test_idempotency_sqlite.py.
pytestmark = [pytest.mark.services, pytest.mark.django_db, pytest.mark.urls("tests.idempotency.urls")]


def post(client: Client, path: str, data: dict[str, Any], key: str | None, **extra: Any) -> Any:
    if key is not None:
        extra["HTTP_IDEMPOTENCY_KEY"] = key
    return client.post(path, json.dumps(data), content_type="application/json", **extra)


def error_code(response: Any) -> str:
    body = response.json()
    assert body["meta"]["correlation_id"] == response["X-Correlation-ID"], body
    return body["error"]["code"]


def effects(label: str) -> int:
    return Effect.objects.filter(label=label).count()


def basic(user: str, password: str = "pw") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture(params=[False, True], ids=["autocommit", "atomic-requests"])
def atomic_requests(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setitem(connections.settings["default"], "ATOMIC_REQUESTS", request.param)
    return request.param


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="pw")


@pytest.fixture
def bob() -> User:
    return User.objects.create_user("bob", password="pw")


def test_repeat_is_replayed_byte_for_byte_with_the_first_correlation_id(client: Client) -> None:
    data = {"label": "replay"}
    first = post(client, "/plain/", data, '"order-1"')
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first
    assert first.cookies["session_hint"].value == "must-not-be-replayed"

    # The same key as a bare token, sent by a client that names its retry with a correlation ID of its own.
    retry_id = new_id()
    again = post(client, "/plain/", data, "order-1", HTTP_X_CORRELATION_ID=retry_id)
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["X-Correlation-ID"] == first["X-Correlation-ID"] != retry_id
    assert again["Content-Type"] == first["Content-Type"] == "application/json"
    assert again["Location"] == first["Location"]
    assert "X-Internal" not in again
    assert "session_hint" not in again.cookies
    assert effects("replay") == 1

    record = IdempotencyRecord.objects.get(client_key="order-1")
    assert record.state == IdempotencyRecord.State.COMPLETED
    assert record.correlation_id == first["X-Correlation-ID"]
    assert record.replay_count == 1
    assert (record.method, record.path, record.response_status) == ("POST", "/plain/", 201)
    assert dict(record.response_headers) == {
        "Content-Type": "application/json",
        "Location": first["Location"],
    }


@pytest.mark.django_db(transaction=True)
def test_replay_is_recorded_in_the_first_requests_trace(client: Client) -> None:
    # Transactional: the recorder may write from its own thread and connection.
    with override_settings(TRACING_APP={**app_settings.user_settings(), "TRACE_ENABLED": True}):
        first = post(client, "/plain/", {"label": "traced"}, "traced-1")
        retry_id = new_id()
        post(client, "/plain/", {"label": "traced"}, "traced-1", HTTP_X_CORRELATION_ID=retry_id)
        recorder.flush()
    event = TraceEvent.objects.get(kind="idempotent.replay")
    assert event.correlation_id == first["X-Correlation-ID"]
    assert event.name == "http"
    assert event.status == "201"
    assert event.attributes["client_key"] == "traced-1"
    assert event.attributes["retry_correlation_id"] == retry_id
    finished = TraceEvent.objects.filter(kind="request.finished", correlation_id=first["X-Correlation-ID"])
    assert finished.count() == 2, "the retry's hop joined the first request's transaction"


def test_same_key_with_another_payload_is_refused(client: Client) -> None:
    assert post(client, "/plain/", {"label": "a"}, "k-422").status_code == 201
    changed_body = post(client, "/plain/", {"label": "b"}, "k-422")
    assert changed_body.status_code == 422
    assert error_code(changed_body) == "idempotency_key_reused"
    # Stripe's rule: a key used on another endpoint is an error too, not a second operation.
    other_path = post(client, "/plain-too/", {"label": "a"}, "k-422")
    assert other_path.status_code == 422
    assert effects("a") == 1
    assert effects("b") == 0


def test_a_view_with_its_own_operation_has_its_own_keys(client: Client) -> None:
    assert post(client, "/plain/", {"label": "space"}, "shared-key").status_code == 201
    own = post(client, "/own-space/", {"label": "space"}, "shared-key")
    assert own.status_code == 201
    assert "Idempotent-Replayed" not in own
    assert effects("space") == 2


def test_another_users_key_never_replays_their_response(alice: User, bob: User) -> None:
    as_alice, as_bob = Client(), Client()
    as_alice.force_login(alice)
    as_bob.force_login(bob)
    data = {"label": "mine"}
    alices = post(as_alice, "/plain/", data, "same-key")
    bobs = post(as_bob, "/plain/", data, "same-key")
    assert alices.status_code == bobs.status_code == 201
    assert "Idempotent-Replayed" not in bobs
    assert bobs.json()["effect"] != alices.json()["effect"]
    assert effects("mine") == 2
    assert IdempotencyRecord.objects.filter(client_key="same-key").count() == 2
    assert post(as_alice, "/plain/", data, "same-key")["Idempotent-Replayed"] == "true"


def test_anonymous_clients_behind_one_address_never_share_a_key_space() -> None:
    """Two visitors behind one proxy send the same key and body: each gets its own response."""
    data = {"label": "anon"}
    first, second = visitor(), visitor()
    mine = post(first, "/plain/", data, "anon-key", REMOTE_ADDR="10.0.0.1")
    theirs = post(second, "/plain/", data, "anon-key", REMOTE_ADDR="10.0.0.1")
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert theirs.json()["effect"] != mine.json()["effect"]
    again = post(first, "/plain/", data, "anon-key", REMOTE_ADDR="10.0.0.2")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["effect"] == mine.json()["effect"]
    assert effects("anon") == 2


def test_an_anonymous_key_without_a_session_is_refused() -> None:
    refused = post(Client(), "/plain/", {"label": "no-session"}, "lonely-key")
    assert refused.status_code == 400
    assert error_code(refused) == "idempotency_client_unknown"
    assert effects("no-session") == 0
    assert not IdempotencyRecord.objects.exists()
    # Without a key the view runs as it always did.
    assert post(Client(), "/plain/", {"label": "no-session"}, None).status_code == 201


def test_scope_setting_names_the_client(client: Client) -> None:
    request = RequestFactory().post("/", HTTP_X_API_CLIENT="acme")
    with override_settings(
        TRACING_APP={
            **app_settings.user_settings(),
            "IDEMPOTENCY_SCOPE": "tests.idempotency.scopes.api_client",
        }
    ):
        assert principal_scope(request) == "custom:acme"
        data = {"label": "client-scope"}
        assert (
            post(client, "/plain/", data, "k", HTTP_X_API_CLIENT="acme", REMOTE_ADDR="1.1.1.1").status_code
            == 201
        )
        replay = post(client, "/plain/", data, "k", HTTP_X_API_CLIENT="acme", REMOTE_ADDR="2.2.2.2")
        assert replay["Idempotent-Replayed"] == "true"
    assert effects("client-scope") == 1


def test_missing_key(client: Client) -> None:
    optional = post(client, "/plain/", {"label": "no-key"}, None)
    assert optional.status_code == 201
    assert not IdempotencyRecord.objects.exists()
    required = post(client, "/required/", {"label": "no-key"}, None)
    assert required.status_code == 400
    assert error_code(required) == "idempotency_key_missing"
    assert "Idempotency-Key" in required.json()["error"]["message"]
    assert effects("no-key") == 1


@pytest.mark.parametrize(
    "raw",
    [
        "",
        '""',
        '"unterminated',
        '"a" , "b"',
        '"key";param=1',
        "two words",
        'say "hi"',
        "caf\u00e9",
        "tab\tinside",
        '"bad \\n escape"',
        "k" * 256,
        f'"{"k" * 256}"',
    ],
    ids=lambda raw: raw[:20] or "empty",
)
def test_malformed_or_oversized_key_is_refused(client: Client, raw: str) -> None:
    response = post(client, "/plain/", {"label": "bad-key"}, raw)
    assert response.status_code == 400
    assert error_code(response) == "idempotency_key_invalid"
    assert effects("bad-key") == 0
    assert not IdempotencyRecord.objects.exists()


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ('"with space and \\"quotes\\" and \\\\"', 'with space and "quotes" and \\'),
        ("  8e03978e-40d5-43e8-bc93-6894a57f9324  ", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ("k" * 255, "k" * 255),
        ("a:b/c*d", "a:b/c*d"),
    ],
)
def test_accepted_key_forms(client: Client, raw: str, parsed: str) -> None:
    assert post(client, "/plain/", {"label": "good-key"}, raw).status_code == 201
    assert IdempotencyRecord.objects.get().client_key == parsed


def test_server_errors_are_not_stored_and_their_writes_roll_back(client: Client) -> None:
    data = {"label": "boom", "outcome": "server_error"}
    for _ in range(2):
        response = post(client, "/plain/", data, "k-500")
        assert response.status_code == 500
        assert "Idempotent-Replayed" not in response
    assert effects("boom") == 0
    assert not IdempotencyRecord.objects.exists()


def test_an_exception_releases_the_key_and_rolls_back() -> None:
    client = visitor()
    client.raise_request_exception = False
    response = post(client, "/plain/", {"label": "raised", "outcome": "raise"}, "k-raise")
    assert response.status_code == 500
    assert effects("raised") == 0
    assert not IdempotencyRecord.objects.exists()


def test_client_errors_are_stored_and_replayed(client: Client) -> None:
    data = {"label": "rejected", "outcome": "rejected"}
    first = post(client, "/plain/", data, "k-400")
    again = post(client, "/plain/", data, "k-400")
    assert first.status_code == again.status_code == 400
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert effects("rejected") == 1


def test_transient_client_errors_are_not_stored(client: Client) -> None:
    data = {"label": "busy", "outcome": "busy"}
    assert post(client, "/plain/", data, "k-429").status_code == 429
    assert post(client, "/plain/", data, "k-429").status_code == 429
    assert effects("busy") == 0
    assert not IdempotencyRecord.objects.exists()


def test_too_large_a_response_keeps_the_key_but_not_the_body(client: Client) -> None:
    data = {"label": "big", "outcome": "big"}
    with override_settings(
        TRACING_APP={**app_settings.user_settings(), "IDEMPOTENCY_MAX_RESPONSE_BYTES": 1000}
    ):
        first = post(client, "/plain/", data, "k-big")
        again = post(client, "/plain/", data, "k-big")
    assert first.status_code == 201
    assert len(first.content) > 1000
    assert again.status_code == 409
    assert error_code(again) == "idempotency_response_not_stored"
    assert again.json()["error"]["details"] == {"status": 201, "correlation_id": first["X-Correlation-ID"]}
    assert "Retry-After" not in again
    assert effects("big") == 1
    record = IdempotencyRecord.objects.get()
    assert (record.state, record.response_body, record.response_size) == (
        "completed",
        None,
        len(first.content),
    )


def test_a_streamed_response_is_not_kept_for_replay(client: Client) -> None:
    first = post(client, "/streamed/", {"label": "stream"}, "k-stream")
    assert b"".join(first.streaming_content) == b"part one, part two"
    again = post(client, "/streamed/", {"label": "stream"}, "k-stream")
    assert again.status_code == 409
    assert error_code(again) == "idempotency_response_not_stored"
    assert effects("stream") == 1


def test_multipart_form_already_read_by_csrf_middleware() -> None:
    client = visitor()
    client.handler.enforce_csrf_checks = True
    request = RequestFactory().get("/")
    token = get_token(request)
    client.cookies["csrftoken"] = request.META["CSRF_COOKIE"]

    def submit(content: bytes) -> Any:
        return client.post(
            "/form/",
            {"label": "form", "csrfmiddlewaretoken": token, "upload": SimpleUploadedFile("a.txt", content)},
            HTTP_IDEMPOTENCY_KEY="form-key",
        )

    assert submit(b"one").status_code == 201
    assert submit(b"one")["Idempotent-Replayed"] == "true"
    assert submit(b"two").status_code == 422
    assert effects("form") == 1


def test_safe_methods_are_untouched(client: Client) -> None:
    response = client.get("/plain/", HTTP_IDEMPOTENCY_KEY="get-key")
    assert response.status_code == 200
    assert not IdempotencyRecord.objects.exists()


def test_the_view_can_derive_keys_for_foreign_calls(client: Client) -> None:
    first = post(client, "/plain/", {"label": "step"}, "step-key").json()
    other = post(client, "/plain/", {"label": "step"}, "other-step-key").json()
    record = IdempotencyRecord.objects.get(client_key="step-key")
    # Derived from the record's key alone, so an attempt taking over from a dead one derives the same.
    assert first["charge_key"] == Claim(record.pk, owner="any", using="default").step_key("charge")
    assert first["charge_key"] != other["charge_key"]
    assert first["in_transaction"] is True


def test_class_based_view_with_method_decorator(client: Client, atomic_requests: bool) -> None:
    assert post(client, "/class-based/", {"label": "cbv"}, None).status_code == 400
    first = post(client, "/class-based/", {"label": "cbv"}, "cbv-key")
    again = post(client, "/class-based/", {"label": "cbv"}, "cbv-key")
    assert first.status_code == 201
    assert first.json()["in_transaction"] is True
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    assert effects("cbv") == 1


class TestDRF:
    def test_envelope_is_replayed_with_its_original_meta(self, client: Client, alice: User) -> None:
        data = {"label": "api"}
        first = post(client, "/api/effects/", data, "api-key", HTTP_AUTHORIZATION=basic("alice"))
        assert first.status_code == 201
        body = first.json()
        assert body["data"]["label"] == "api"
        assert body["meta"]["correlation_id"] == first["X-Correlation-ID"]
        again = post(client, "/api/effects/", data, "api-key", HTTP_AUTHORIZATION=basic("alice"))
        assert again["Idempotent-Replayed"] == "true"
        assert again.content == first.content
        assert again["X-Correlation-ID"] == first["X-Correlation-ID"]
        assert effects("api") == 1

    def test_scope_is_the_principal_not_the_credential(self, alice: User) -> None:
        data = {"label": "principal"}
        by_password = Client()
        first = post(by_password, "/api/effects/", data, "p-key", HTTP_AUTHORIZATION=basic("alice"))
        by_session = Client()
        by_session.force_login(alice)
        again = post(by_session, "/api/effects/", data, "p-key")
        assert first.status_code == again.status_code == 201
        assert again["Idempotent-Replayed"] == "true"
        record = IdempotencyRecord.objects.get()
        assert record.key == record_key(f"user:{alice.pk}", "http", "p-key")
        assert "Basic" not in record.scope

    def test_authentication_failures_are_not_stored(self, client: Client, alice: User) -> None:
        data = {"label": "denied"}
        refused = post(client, "/api/effects/", data, "auth-key", HTTP_AUTHORIZATION=basic("alice", "wrong"))
        assert refused.status_code == 403  # SessionAuthentication comes first: no WWW-Authenticate, so 403
        assert not IdempotencyRecord.objects.exists()
        accepted = post(client, "/api/effects/", data, "auth-key", HTTP_AUTHORIZATION=basic("alice"))
        assert accepted.status_code == 201
        assert "Idempotent-Replayed" not in accepted

    def test_validation_errors_are_stored(self, client: Client, alice: User) -> None:
        auth = basic("alice")
        first = post(client, "/api/effects/", {"label": ""}, "v-key", HTTP_AUTHORIZATION=auth)
        again = post(client, "/api/effects/", {"label": ""}, "v-key", HTTP_AUTHORIZATION=auth)
        assert first.status_code == again.status_code == 400
        assert first.json()["error"]["code"] == "invalid"
        assert again.content == first.content
        assert again["Idempotent-Replayed"] == "true"
        assert effects("invalid") == 1

    def test_mixin_and_decorated_function_view_require_keys(self, client: Client, alice: User) -> None:
        auth = basic("alice")
        for path in ("/api/required/", "/api/function/", "/api/rewrapped/"):
            data = {"label": path}
            missing = post(client, path, data, None, HTTP_AUTHORIZATION=auth)
            assert missing.status_code == 400, path
            assert error_code(missing) == "idempotency_key_missing"
            first = post(client, path, data, f"key{path}", HTTP_AUTHORIZATION=auth)
            again = post(client, path, data, f"key{path}", HTTP_AUTHORIZATION=auth)
            assert first.status_code == 201
            assert again["Idempotent-Replayed"] == "true"
            assert again.content == first.content
            assert effects(path) == 1


class TestConfiguredViews:
    MIDDLEWARE = [
        "tracing_app.middleware.CorrelationIdMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "tracing_app.idempotency.middleware.IdempotencyMiddleware",
    ]

    def configured(self, views: Any) -> Any:
        return override_settings(
            MIDDLEWARE=self.MIDDLEWARE,
            TRACING_APP={**app_settings.user_settings(), "IDEMPOTENCY_VIEWS": views},
        )

    def test_named_view_is_guarded(self, client: Client) -> None:
        data = {"label": "configured"}
        with self.configured(["idem-configured"]):
            first = post(client, "/configured/", data, "c-key")
            again = post(client, "/configured/", data, "c-key")
        assert first.status_code == 201
        assert again["Idempotent-Replayed"] == "true"
        assert again.content == first.content
        assert effects("configured") == 1

    def test_options_per_view_and_dotted_paths(self, client: Client) -> None:
        with self.configured({"tests.idempotency.views.configured": {"required": True}}):
            response = post(client, "/configured/", {"label": "strict"}, None)
        assert response.status_code == 400
        assert error_code(response) == "idempotency_key_missing"

    def test_unlisted_views_and_safe_methods_pass(self, client: Client) -> None:
        with self.configured(["idem-something-else"]):
            assert post(client, "/configured/", {"label": "free"}, "f-key").status_code == 201
            assert post(client, "/configured/", {"label": "free"}, "f-key").status_code == 201
        with self.configured(["idem-configured"]):
            assert client.get("/configured/", HTTP_IDEMPOTENCY_KEY="f-key").status_code == 200
        assert effects("free") == 2
        assert not IdempotencyRecord.objects.exists()

    def test_decorated_views_are_not_guarded_twice(self, client: Client) -> None:
        with self.configured(["idem-plain"]):
            first = post(client, "/plain/", {"label": "once"}, "o-key")
            again = post(client, "/plain/", {"label": "once"}, "o-key")
        assert again["Idempotent-Replayed"] == "true"
        assert first.content == again.content
        assert IdempotencyRecord.objects.get().replay_count == 1


@pytest.mark.django_db(transaction=True)
def test_a_fresh_key_costs_three_statements_and_a_replay_one(client: Client) -> None:
    """Transaction mode: the replay lookup (matching nothing, outside any transaction), the claim and the
    completion sent with COMMIT around the view's own statements; a repeat is the replay lookup alone,
    its count committed without waiting for the disk."""
    table = IdempotencyRecord._meta.db_table
    data = {"label": "counted"}
    with CaptureQueriesContext(connections["default"]) as first:
        original = post(client, "/plain/", data, "counted-key")
    with CaptureQueriesContext(connections["default"]) as repeat:
        replay = post(client, "/plain/", data, "counted-key")
    guard = [query["sql"] for query in first.captured_queries if table in query["sql"]]
    assert len(guard) == 3, guard
    assert guard[0].startswith("UPDATE") and "synchronous_commit" in guard[0]
    assert "INSERT INTO" in guard[1] and "ON CONFLICT DO NOTHING" in guard[1]
    assert guard[2].startswith("WITH done AS (UPDATE") and guard[2].endswith("; COMMIT")
    replayed = [query["sql"] for query in repeat.captured_queries if table in query["sql"]]
    assert len(replayed) == 1 and replayed[0].startswith("UPDATE") and "synchronous_commit" in replayed[0]
    assert (original.status_code, replay["Idempotent-Replayed"]) == (201, "true")
    assert replay.content == original.content
    assert effects("counted") == 1
    assert IdempotencyRecord.objects.get().replay_count == 1
