import pytest
from django.core.checks import run_checks
from django.test import override_settings

from tracing_app.checks import MIDDLEWARE_PATH


def ids(**overrides):
    with override_settings(**overrides):
        return sorted(m.id for m in run_checks() if m.id.startswith("tracing_app."))


def test_demo_settings_are_clean():
    assert ids() == []


@pytest.mark.parametrize(
    ("tracing_app", "expected"),
    [
        ({"HEADRE": "X-Correlation-ID"}, "tracing_app.E001"),
        ({"HEADER": "X Correlation"}, "tracing_app.E002"),
        ({"ALTERNATE_HEADERS": ["X-Request-ID\r\n"]}, "tracing_app.E002"),
        ({"ID_PATTERN": "[a-z"}, "tracing_app.E003"),
        ({"ID_PATTERN": ".+"}, "tracing_app.E003"),
        ({"ID_PATTERN": r"[\w\s]+"}, "tracing_app.E003"),
        ({"MAX_ID_LENGTH": 10_000}, "tracing_app.E004"),
        ({"ACCEPTED_FORMATS": ["ulid", "snowflake"]}, "tracing_app.E004"),
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
