"""System checks for the outbox settings."""

from __future__ import annotations

import pytest
from django.test import override_settings

from tracing_app.checks.outbox import check_outbox_settings


def ids(**outbox: object) -> set[str]:
    with override_settings(TRACING_APP=outbox):
        return {message.id for message in check_outbox_settings()}


def test_defaults_pass() -> None:
    assert ids() == set()


def test_an_unknown_database_is_an_error() -> None:
    assert ids(OUTBOX_DATABASE="elsewhere") == {"tracing_app.E601"}


@pytest.mark.parametrize("value", [0, -1, "5", True, None])
def test_relay_timings_must_be_positive_numbers(value: object) -> None:
    assert ids(OUTBOX_RELAY_DELAY=value) == {"tracing_app.E602"}
