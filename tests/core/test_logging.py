import io
import json
import logging
import logging.config
import sys

import pytest

from tracing_app import bind
from tracing_app.logs import CorrelationIdFilter, JsonFormatter, set_span_source


@pytest.fixture
def json_logger():
    stream = io.StringIO()
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "filters": {"correlation": {"()": "tracing_app.logs.CorrelationIdFilter"}},
            "formatters": {"json": {"()": "tracing_app.logs.JsonFormatter"}},
            "handlers": {
                "memory": {
                    "class": "logging.StreamHandler",
                    "stream": stream,
                    "filters": ["correlation"],
                    "formatter": "json",
                }
            },
            "loggers": {"spine.json": {"handlers": ["memory"], "level": "DEBUG", "propagate": False}},
        }
    )
    logger = logging.getLogger("spine.json")

    def lines():
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    yield logger, lines
    logger.handlers.clear()


def test_records_outside_a_transaction_carry_the_empty_value(json_logger):
    logger, lines = json_logger
    logger.info("outside")
    (line,) = lines()
    assert line["correlation_id"] == line["causation_id"] == line["trace_id"] == line["span_id"] == "-"


def test_records_inside_a_transaction_carry_its_ids(json_logger):
    logger, lines = json_logger
    with bind("cid-1", causation_id="parent-9"):
        logger.warning("inside %s", "x", extra={"order_id": 42})
    (line,) = lines()
    assert line["correlation_id"] == "cid-1"
    assert line["causation_id"] == "parent-9"
    assert line["message"] == "inside x"
    assert line["level"] == "WARNING"
    assert line["logger"] == "spine.json"
    assert line["order_id"] == 42
    assert line["timestamp"].endswith("+00:00")


def test_explicit_extra_ids_are_kept(json_logger):
    logger, lines = json_logger
    with bind("current"):
        logger.info("forwarded", extra={"correlation_id": "from-elsewhere"})
    assert lines()[0]["correlation_id"] == "from-elsewhere"


def test_hostile_values_stay_on_one_line_and_parse(json_logger):
    logger, lines = json_logger
    hostile = 'line1\nline2\r\n{"level": "CRITICAL"}\x00\u2028 ünï "quoted" \\'
    logger.error(hostile, extra={"payload": object()})
    [line] = lines()
    assert line["message"] == hostile
    assert line["level"] == "ERROR"
    assert line["payload"].startswith("<object object")


def test_exceptions_are_included(json_logger):
    logger, lines = json_logger
    try:
        raise ValueError("bad value")
    except ValueError:
        logger.exception("failed")
    assert "ValueError: bad value" in lines()[0]["exception"]


def test_span_source_hook():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    set_span_source(lambda: ("a" * 32, "b" * 16))
    try:
        CorrelationIdFilter().filter(record)
    finally:
        set_span_source(None)
    assert (record.trace_id, record.span_id) == ("a" * 32, "b" * 16)


def test_filter_never_drops_and_formatter_handles_missing_fields():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "plain %d", (1,), None)
    assert JsonFormatter().format(record).count("\n") == 0
    assert json.loads(JsonFormatter().format(record))["correlation_id"] == "-"
    assert CorrelationIdFilter().filter(record) is True


def test_formatter_output_is_ascii_even_for_lone_surrogates():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "bad \udcff", None, None)
    out = JsonFormatter().format(record)
    assert out.isascii()
    out.encode(sys.getdefaultencoding())
