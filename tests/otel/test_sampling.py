"""One sampling decision per transaction: the span's flag, the trace events' ``sampled`` and what is
propagated onwards always agree, at SAMPLE_RATE 0, 1 and in between."""

from __future__ import annotations

import pytest
from django.test import override_settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from tracing_app import bind, otel
from tracing_app.otel.sampling import TransactionRootSampler, transaction_sampler
from tracing_app.sampling import is_sampled

pytestmark = pytest.mark.urls("tests.otel.urls")

T = "4bf92f3577b34da6a3ce929d0e0e4736"
P = "00f067aa0ba902b7"


def rate(value: float):
    return override_settings(TRACING_APP={"SAMPLE_RATE": value})


def server_spans(spans):
    return [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]


def propagated_sampled(seen: dict) -> bool:
    """The sampled bit of the traceparent the request would send onwards (other bits may be set)."""
    return bool(int(seen["traceparent"].rsplit("-", 1)[1], 16) & 1)


def test_rate_one_samples_the_request_and_its_events(client, spans):
    with rate(1.0):
        seen = client.get("/otel/echo/").json()
    assert seen["sampled"] is propagated_sampled(seen) is True
    assert len(server_spans(spans)) == 1


def test_rate_zero_drops_the_span_and_the_events_but_still_propagates(client, spans):
    with rate(0.0):
        response = client.get("/otel/echo/")
    seen = response.json()
    assert seen["sampled"] is propagated_sampled(seen) is False
    assert server_spans(spans) == []
    # Unsampled is not untraced: the ID and the trace still travel onwards.
    assert seen["baggage"] == response["X-Correlation-ID"]


@pytest.mark.parametrize("incoming_flag", ["01", "00"])
@pytest.mark.parametrize("sample_rate", [0.0, 1.0])
def test_incoming_sampled_flag_decides_for_spans_and_events(client, spans, incoming_flag, sample_rate):
    with rate(sample_rate):
        seen = client.get("/otel/echo/", HTTP_TRACEPARENT=f"00-{T}-{P}-{incoming_flag}").json()
    sampled = incoming_flag == "01"
    assert seen["sampled"] is propagated_sampled(seen) is sampled
    assert len(server_spans(spans)) == (1 if sampled else 0)


def test_partial_rate_keeps_spans_and_events_in_step(client, spans):
    decisions = []
    with rate(0.5):
        for _ in range(60):
            seen = client.get("/otel/echo/").json()
            decisions.append(seen["sampled"])
            assert propagated_sampled(seen) is seen["sampled"]
    kept = {s.attributes[otel.ATTRIBUTE] for s in server_spans(spans)}
    assert len(kept) == sum(decisions)
    # Both outcomes occur at 0.5 (probability of either missing in 60 draws: 2 * 2**-60).
    assert 0 < sum(decisions) < 60


def test_a_trace_started_inside_a_transaction_follows_its_decision():
    provider = TracerProvider(sampler=transaction_sampler())
    tracer = provider.get_tracer("test")
    for sampled in (True, False):
        with rate(0.5), bind(sampled=sampled), tracer.start_as_current_span("job") as span:
            assert span.get_span_context().trace_flags.sampled is sampled
            with tracer.start_as_current_span("step") as child:
                assert child.get_span_context().trace_flags.sampled is sampled


def test_root_sampler_outside_a_transaction_samples_by_trace_id():
    """The one sampling function, keyed by the trace ID's hex form."""
    sampler = TransactionRootSampler()
    low, high = 2, 1  # their hex forms' CRC-32 fall below and above half the space
    trace_ids = range(1, 200)
    with rate(0.5):
        assert sampler.should_sample(None, low, "x").decision.is_sampled()
        assert not sampler.should_sample(None, high, "x").decision.is_sampled()
    with rate(0.0):
        assert not sampler.should_sample(None, low, "x").decision.is_sampled()
    with rate(1.0):
        assert sampler.should_sample(None, high, "x").decision.is_sampled()
    with rate(0.3):
        assert [sampler.should_sample(None, t, "x").decision.is_sampled() for t in trace_ids] == [
            is_sampled(f"{t:032x}") for t in trace_ids
        ]


@pytest.mark.services
def test_a_task_published_outside_a_transaction_carries_one_decision(redis_url, spans, settings):
    """Beat and shells publish outside any transaction: the message starts one, with one decision."""
    from kombu import Connection

    from tests.otel.tasks import child
    from tests.support.worker import delete_queues, publishing_to, unique_queue
    from tracing_app.celery import ORIGIN_HEADER, SAMPLED_HEADER

    settings.TRACING_APP = {"SAMPLE_RATE": 0.5}
    queue = unique_queue("otel-publish")
    try:
        with publishing_to(redis_url, queue):
            for _ in range(40):
                child.apply_async()
        with Connection(redis_url) as connection:
            simple = connection.SimpleQueue(queue)
            messages = [simple.get(timeout=10) for _ in range(40)]
            for message in messages:
                message.ack()
            simple.close()
    finally:
        delete_queues(redis_url, queue)
    decisions = []
    for message in messages:
        headers = message.headers
        assert headers[ORIGIN_HEADER] == "publish"
        span_sampled = bool(int(headers["traceparent"].rsplit("-", 1)[1], 16) & 1)
        assert headers[SAMPLED_HEADER] == ("1" if span_sampled else "0")
        decisions.append(span_sampled)
    assert 0 < sum(decisions) < 40
    assert len([s for s in spans.get_finished_spans() if s.kind == SpanKind.PRODUCER]) == sum(decisions)
