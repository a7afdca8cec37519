"""One trace from an HTTP request through a task and its child task, across a real prefork worker.

The web side is this process (in-memory exporter); the worker is ``celery worker`` started by the shared
harness with OpenTelemetry switched on by the test settings and configured only through the standard
``OTEL_*`` variables, exporting over OTLP/HTTP to a receiver in this test. ``--max-tasks-per-child=1``
recycles each pool child after one task, and the batch delay is far longer than the test, so the worker's
spans arrive only if each child flushes on ``worker_process_shutdown``.
"""

from __future__ import annotations

import pytest
from opentelemetry.trace import SpanKind

from tests.otel.otlp import otlp_receiver
from tests.support.waiting import wait_until
from tests.support.worker import run_worker
from tracing_app import otel

pytestmark = [
    pytest.mark.urls("tests.otel.urls"),
    pytest.mark.services,
    # The worker records trace events in the test database; flushed after each test.
    pytest.mark.django_db(transaction=True),
]

CONSUMER = 5  # OTLP SpanKind


def worker_env(endpoint: str) -> dict[str, str]:
    return {
        "TEST_OTEL": "1",
        "OTEL_SERVICE_NAME": "tracing-test-worker",
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "600000",
    }


@pytest.mark.parametrize("broker", ["rabbitmq_url", "redis_url"])
def test_one_trace_from_the_request_through_a_task_and_its_child(request, broker, client, spans):
    broker_url = request.getfixturevalue(broker)
    with (
        otlp_receiver() as receiver,
        run_worker(
            broker_url,
            extra_args=["--include", "tests.otel.tasks", "--max-tasks-per-child=1"],
            env=worker_env(receiver.endpoint),
        ) as worker,
    ):
        response = client.get("/otel/publish/")
        assert response.status_code == 200
        correlation_id = response["X-Correlation-ID"]

        def worker_spans() -> dict:
            by_name = {s.name: s for s in receiver.spans()}
            wanted = ("run/tests.otel.parent", "apply_async/tests.otel.child", "run/tests.otel.child")
            return by_name if all(name in by_name for name in wanted) else {}

        remote = wait_until(worker_spans, timeout=60, what="the worker's spans over OTLP")
        logs = {
            record["message"]: record
            for record in worker.wait_for_all(
                lambda r: r["message"] in ("otel parent task", "otel child task"), 2, timeout=30
            )
        }

    local = {s.name: s for s in spans.get_finished_spans()}
    server = next(s for s in local.values() if s.kind == SpanKind.SERVER)
    publish = local["apply_async/tests.otel.parent"]
    trace_id = f"{server.context.trace_id:032x}"

    # One trace, parent to child: request -> publish -> parent task -> publish -> child task.
    assert publish.parent.span_id == server.context.span_id
    run_parent = remote["run/tests.otel.parent"]
    publish_child = remote["apply_async/tests.otel.child"]
    run_child = remote["run/tests.otel.child"]
    for span in (run_parent, publish_child, run_child):
        assert span.trace_id == trace_id
        assert span.service == "tracing-test-worker"
    assert run_parent.parent_span_id == f"{publish.context.span_id:016x}"
    assert publish_child.parent_span_id == run_parent.span_id
    assert run_child.parent_span_id == publish_child.span_id
    assert (run_parent.kind, run_child.kind) == (CONSUMER, CONSUMER)

    # The correlation ID on every span, and in the baggage each message carried.
    assert server.attributes[otel.ATTRIBUTE] == publish.attributes[otel.ATTRIBUTE] == correlation_id
    for span in (run_parent, publish_child, run_child):
        assert span.attributes[otel.ATTRIBUTE] == correlation_id
    for record in logs.values():
        assert f"{otel.BAGGAGE_KEY}={correlation_id}" in record["message_baggage"].split(",")
        assert record["current_baggage"] == correlation_id
        # Worker log records carry the trace.
        assert record["correlation_id"] == correlation_id
        assert record["trace_id"] == trace_id
    assert logs["otel parent task"]["span_id"] == run_parent.span_id
    assert logs["otel child task"]["span_id"] == run_child.span_id
    # Two pool children: the first exported its spans only by flushing as it was recycled.
    assert logs["otel parent task"]["process"] != logs["otel child task"]["process"]
