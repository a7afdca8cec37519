"""Fixtures for the trace store's tests: recording switched on, users with and without access."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tracing_app.context import bind
from tracing_app.traces import recorder
from tracing_app.traces.models import TraceEvent

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _nothing_left_behind(request: pytest.FixtureRequest) -> Iterator[None]:
    """Write what a test recorded while its database is still there, so nothing leaks into the next."""
    yield
    if "django_db_setup" in request.fixturenames:
        recorder.flush()


@pytest.fixture
def tracing(settings: Any) -> Iterator[dict[str, Any]]:
    """Recording on, with a background interval long enough that only explicit flushes write, so the
    events join the test's transaction and roll back with it."""
    settings.TRACING_APP = {**settings.TRACING_APP, "TRACE_ENABLED": True, "TRACE_FLUSH_INTERVAL": 3600}
    recorder.flush()
    yield settings.TRACING_APP
    # Before the settings are restored (which wakes the background writer): the events of the test's own
    # requests join its transaction and roll back with it.
    recorder.flush()


def events(correlation_id: str) -> list[TraceEvent]:
    return list(TraceEvent.objects.filter(correlation_id=correlation_id).order_by("sequence", "id"))


@pytest.fixture
def store(tracing: dict[str, Any]) -> Callable[..., str]:
    """Records a small transaction through the public API and writes it; returns its correlation ID."""

    def make(correlation_id: str | None = None, *, sampled: bool = True, **attributes: Any) -> str:
        with bind(correlation_id, sampled=sampled, origin="http") as ctx:
            recorder.record(
                "request.started", attributes={"method": "POST", "path": "/checkout/", **attributes}
            )
            recorder.record("log", name="checkout", status="WARNING", attributes={"message": "slow gateway"})
            recorder.record("request.finished", name="checkout", status="201", duration_ms=12.5)
        recorder.flush()
        return ctx.correlation_id

    return make


def _user(username: str, *, staff: bool, permission: bool = False, superuser: bool = False) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=staff, is_superuser=superuser)
    if permission:
        user.user_permissions.add(
            Permission.objects.get(codename="view_trace", content_type__app_label="tracing_app")
        )
    return user


@pytest.fixture
def viewer(db: None) -> User:
    """Staff with the view permission on traces (and nothing else)."""
    return _user("support", staff=True, permission=True)


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    return _user
