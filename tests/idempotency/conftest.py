"""The anonymous visitors of these tests carry a session: an anonymous key is kept per session."""

from __future__ import annotations

import pytest
from django.test import Client


def visitor() -> Client:
    """A new anonymous client with a session of its own (saved, its cookie set)."""
    client = Client()
    client.session  # noqa: B018  (reading it saves a new session and sets the cookie)
    return client


@pytest.fixture
def client(db: None) -> Client:
    return visitor()
