"""Stored tracebacks split into frames, and list times read at a glance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracing_app.traces.queries import time_ago
from tracing_app.traces.tracebacks import Frame, parse

CHAINED = """Traceback (most recent call last):
  File "/app/gateway.py", line 12, in charge
    return post(url)
           ^^^^^^^^^
TimeoutError: read timed out

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/tasks.py", line 40, in charge_payment
    charge = gateway.charge()
  File "/app/gateway.py", line 14, in charge
    raise GatewayTimeout("no answer") from exc
shop.GatewayTimeout: no answer
"""


def test_frames_and_the_final_exception_are_read_from_a_chained_traceback():
    parsed = parse(CHAINED)
    assert parsed.exception == "shop.GatewayTimeout: no answer"
    assert parsed.frames[-2:] == [
        Frame("/app/tasks.py", 40, "charge_payment", "charge = gateway.charge()"),
        Frame("/app/gateway.py", 14, "charge", 'raise GatewayTimeout("no answer") from exc'),
    ]
    assert parsed.frames[0].location == "/app/gateway.py:12"


def test_a_traceback_cut_at_the_front_still_gives_its_frames():
    cut = "..." + CHAINED[CHAINED.index("gateway.charge()") :]
    parsed = parse(cut)
    assert parsed.exception == "shop.GatewayTimeout: no answer"
    assert [frame.line for frame in parsed.frames] == [14]


def test_text_without_frames_gives_none():
    assert parse("just a message").frames == []


def test_times_read_as_how_long_ago():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    assert [
        time_ago(now - delta, now)
        for delta in (
            timedelta(seconds=12),
            timedelta(minutes=5, seconds=3),
            timedelta(hours=3),
            timedelta(days=2, hours=1),
            timedelta(seconds=-3),
        )
    ] == ["12 s ago", "5 min ago", "3 h ago", "2 d ago", "0 s ago"]
