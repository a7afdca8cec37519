import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tracing_app.checks.celery import check_celery_installed
from tracing_app.checks.middleware import MIDDLEWARE_PATH

# The model checks ask SQLite whether it supports JSONField (Django 6.1), a query on the test database.
pytestmark = pytest.mark.django_db


def ids(**overrides):
    with override_settings(**overrides):
        return sorted(m.id for m in run_checks() if m.id.startswith("tracing_app."))


def test_the_test_settings_are_clean():
    assert ids() == []


@pytest.mark.parametrize(
    ("tracing_app", "expected"),
    [
        ({"HEADRE": "X-Correlation-ID"}, "tracing_app.E001"),
        ({"HEADER": "X Correlation"}, "tracing_app.E002"),
        ({"ALTERNATE_HEADERS": ["X-Request-ID\r\n"]}, "tracing_app.E002"),
        ({"ID_PATTERN": "[a-z"}, "tracing_app.E003"),
        ({"ID_PATTERN": ".+"}, "tracing_app.E006"),
        ({"ID_PATTERN": r"[\w\s]+"}, "tracing_app.E006"),
        ({"MAX_ID_LENGTH": 10_000}, "tracing_app.E004"),
        ({"ACCEPTED_FORMATS": ["ulid", "snowflake"]}, "tracing_app.E007"),
        ({"SAMPLE_RATE": 1.5}, "tracing_app.E005"),
        ({"SAMPLE_RATE": "half"}, "tracing_app.E005"),
    ],
)
def test_misconfiguration_is_reported(tracing_app, expected):
    assert expected in ids(TRACING_APP=tracing_app)


def test_unknown_key_suggests_the_right_one():
    with override_settings(TRACING_APP={"HEADRE": "X"}):
        (message,) = [m for m in run_checks() if m.id == "tracing_app.E001"]
    assert message.hint == "Did you mean 'HEADER'?"


def test_missing_middleware(settings):
    assert ids(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != MIDDLEWARE_PATH]) == ["tracing_app.E010"]


def test_middleware_after_a_logging_middleware(settings):
    late = ["django.middleware.common.CommonMiddleware", MIDDLEWARE_PATH]
    assert ids(MIDDLEWARE=late) == ["tracing_app.W011"]
    allowed = ["django.middleware.security.SecurityMiddleware", MIDDLEWARE_PATH]
    assert ids(MIDDLEWARE=allowed) == []


REST = {"DEFAULT_RENDERER_CLASSES": ["tracing_app.rest.EnvelopeJSONRenderer"]}


def test_a_project_exception_handler_in_rest_framework_is_flagged():
    assert "tracing_app.W012" in ids(
        REST_FRAMEWORK={**REST, "EXCEPTION_HANDLER": "tests.core.handlers.wrapping"}
    )
    assert "tracing_app.W012" not in ids(
        REST_FRAMEWORK={**REST, "EXCEPTION_HANDLER": "tracing_app.rest.exception_handler"},
        TRACING_APP={"DRF_EXCEPTION_HANDLER": "tests.core.handlers.wrapping"},
    )


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        ("tracing_app.rest.exception_handler", "tracing_app.E013"),
        ("tests.core.handlers.missing", "tracing_app.E015"),
    ],
)
def test_the_project_exception_handler_must_not_be_ours_and_must_import(handler, expected):
    assert ids(TRACING_APP={"DRF_EXCEPTION_HANDLER": handler}) == [expected]


def logging_config(filters):
    return {
        "version": 1,
        "filters": {"correlation": {"()": "tracing_app.logs.CorrelationIdFilter"}},
        "formatters": {"text": {"format": "%(asctime)s [%(correlation_id)s] %(message)s"}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "text", "filters": filters}},
    }


def test_a_log_format_naming_our_fields_needs_the_filter():
    assert "tracing_app.E014" in ids(LOGGING=logging_config([]))
    assert "tracing_app.E014" not in ids(LOGGING=logging_config(["correlation"]))
    braces = logging_config([])
    braces["formatters"]["text"] = {"format": "{asctime} {trace_id:>32} {message}", "style": "{"}
    assert "tracing_app.E014" in ids(LOGGING=braces)


def test_celery_without_install_is_flagged(monkeypatch):
    import tracing_app.celery

    assert check_celery_installed() == []
    monkeypatch.setattr(tracing_app.celery, "is_installed", lambda: False)
    (warning,) = check_celery_installed()
    assert warning.id == "tracing_app.W301"
    assert "install(app)" in warning.hint
