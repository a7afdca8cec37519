"""System checks: catch a misconfigured ``TRACING_APP`` or middleware order at startup."""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.utils.module_loading import import_string

from tracing_app.conf import DEFAULTS, app_settings
from tracing_app.logs import CorrelationIdFilter, configured_class

MIDDLEWARE_PATH = "tracing_app.middleware.CorrelationIdMiddleware"
# RFC 9110 "token": the characters a header field name may use.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Values an ID pattern must never accept: they would allow header or log injection.
_HOSTILE_SAMPLES = ("a\r\nb", "a\nb", 'a"b', "a<b>", "a b", "a\x00b", "a\\b", "a{b}", "é")
_FORMATS = frozenset({"ulid", "uuid", "token"})


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = app_settings.user_settings()
    messages: list[CheckMessage] = [
        Error(
            f"TRACING_APP has an unknown key {key!r}.",
            hint=_suggest(key),
            id="tracing_app.E001",
        )
        for key in user
        if key not in DEFAULTS
    ]
    for setting in (user.get("HEADER", DEFAULTS["HEADER"]), *user.get("ALTERNATE_HEADERS", ())):
        if not isinstance(setting, str) or not _HEADER_NAME.fullmatch(setting):
            messages.append(
                Error(
                    f"TRACING_APP header name {setting!r} is not a valid HTTP header name.",
                    hint="Use letters, digits and hyphens, e.g. 'X-Correlation-ID'.",
                    id="tracing_app.E002",
                )
            )
    messages += _check_id_settings(user)
    rate = user.get("SAMPLE_RATE", DEFAULTS["SAMPLE_RATE"])
    if not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
        messages.append(
            Error(
                f"TRACING_APP['SAMPLE_RATE'] must be a number from 0.0 to 1.0, not {rate!r}.",
                id="tracing_app.E005",
            )
        )
    return messages


def _check_id_settings(user: dict[str, Any]) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    pattern = user.get("ID_PATTERN", DEFAULTS["ID_PATTERN"])
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError) as exc:
        return [
            Error(f"TRACING_APP['ID_PATTERN'] does not compile: {exc}.", id="tracing_app.E003"),
        ]
    unsafe = [sample for sample in _HOSTILE_SAMPLES if regex.fullmatch(sample)]
    if unsafe:
        messages.append(
            Error(
                f"TRACING_APP['ID_PATTERN'] accepts unsafe values such as {unsafe[0]!r}.",
                hint="Allow only printable ASCII without spaces or quotes, e.g. r'[A-Za-z0-9._:-]+'.",
                id="tracing_app.E003",
            )
        )
    length = user.get("MAX_ID_LENGTH", DEFAULTS["MAX_ID_LENGTH"])
    if not isinstance(length, int) or not 26 <= length <= 1024:
        messages.append(
            Error(
                f"TRACING_APP['MAX_ID_LENGTH'] must be an integer from 26 to 1024, not {length!r}.",
                id="tracing_app.E004",
            )
        )
    formats = set(user.get("ACCEPTED_FORMATS", DEFAULTS["ACCEPTED_FORMATS"]))
    if formats - _FORMATS:
        messages.append(
            Error(
                f"TRACING_APP['ACCEPTED_FORMATS'] has unknown formats {sorted(formats - _FORMATS)}.",
                hint=f"Choose from {sorted(_FORMATS)}.",
                id="tracing_app.E004",
            )
        )
    return messages


@register(Tags.compatibility)
def check_middleware(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    middleware = list(getattr(settings, "MIDDLEWARE", None) or ())
    if MIDDLEWARE_PATH not in middleware:
        return [
            Error(
                f"{MIDDLEWARE_PATH} is not in MIDDLEWARE: requests get no correlation ID.",
                hint="Add it as the first entry of MIDDLEWARE.",
                id="tracing_app.E010",
            )
        ]
    allowed = set(app_settings.MIDDLEWARE_ALLOWED_BEFORE)
    before = [path for path in middleware[: middleware.index(MIDDLEWARE_PATH)] if path not in allowed]
    if before:
        return [
            Warning(
                f"{MIDDLEWARE_PATH} comes after {', '.join(before)}: whatever those log, and any response "
                "they return, carries no correlation ID.",
                hint="Move it to the top of MIDDLEWARE, or list a harmless middleware in "
                "TRACING_APP['MIDDLEWARE_ALLOWED_BEFORE'].",
                id="tracing_app.W011",
            )
        ]
    return []


REST_HANDLER = "tracing_app.rest.exception_handler"
REST_RENDERER = "tracing_app.rest.EnvelopeJSONRenderer"
FILTER_PATH = "tracing_app.logs.CorrelationIdFilter"
# The record fields CorrelationIdFilter adds, as %-, {- or $-style format fields.
_FILTER_FIELDS = re.compile(
    r"%\((correlation_id|causation_id|trace_id|span_id)\)"
    r"|\{(correlation_id|causation_id|trace_id|span_id)[}:!]"
    r"|\$\{?(correlation_id|causation_id|trace_id|span_id)\b"
)


@register(Tags.compatibility)
def check_rest_framework(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    rest = getattr(settings, "REST_FRAMEWORK", None) or {}
    handler = rest.get("EXCEPTION_HANDLER")
    messages: list[CheckMessage] = []
    if REST_RENDERER in rest.get("DEFAULT_RENDERER_CLASSES", ()) and handler not in (None, REST_HANDLER):
        messages.append(
            Warning(
                f"REST_FRAMEWORK['EXCEPTION_HANDLER'] is {handler!r}, not {REST_HANDLER!r}: with the "
                "envelope renderer its error bodies are wrapped as details of a generic error, and DRF's "
                "error codes are lost.",
                hint=f"Set it to {REST_HANDLER!r} and name yours in TRACING_APP['DRF_EXCEPTION_HANDLER']: "
                "it is called instead of DRF's, and its codes are kept.",
                id="tracing_app.W012",
            )
        )
    own = app_settings.DRF_EXCEPTION_HANDLER
    if own == REST_HANDLER:
        messages.append(
            Error(
                f"TRACING_APP['DRF_EXCEPTION_HANDLER'] names {REST_HANDLER!r} itself.",
                hint="Name the project's own handler, or leave it unset for DRF's.",
                id="tracing_app.E013",
            )
        )
    elif own:
        try:
            import_string(own)
        except ImportError as exc:
            messages.append(
                Error(
                    f"TRACING_APP['DRF_EXCEPTION_HANDLER'] cannot be imported: {exc}.", id="tracing_app.E013"
                )
            )
    return messages


@register(Tags.compatibility)
def check_logging(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A LOGGING handler whose format names the filter's fields must have the filter: without it every
    record it writes fails at run time ("--- Logging error ---", KeyError) instead of being logged."""
    config = getattr(settings, "LOGGING", None) or {}
    formatters = config.get("formatters") or {}
    ours = {
        name
        for name, spec in (config.get("filters") or {}).items()
        if issubclass(configured_class(spec) or object, CorrelationIdFilter)
    }
    messages: list[CheckMessage] = []
    for name, handler in (config.get("handlers") or {}).items():
        formatter = formatters.get(handler.get("formatter"), {})
        fields = _FILTER_FIELDS.search(str(formatter.get("format") or formatter.get("fmt") or ""))
        if fields and not ours.intersection(handler.get("filters") or ()):
            field = next(group for group in fields.groups() if group)
            messages.append(
                Error(
                    f"LOGGING handler {name!r} formats {field!r} (formatter "
                    f"{handler.get('formatter')!r}) but lacks the correlation filter: each record it "
                    'writes fails with "--- Logging error ---".',
                    hint=f'Define a filter {{"()": "{FILTER_PATH}"}}; list it in the handler\'s "filters".',
                    id="tracing_app.E014",
                )
            )
    return messages


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, DEFAULTS, n=1)
    return f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(sorted(DEFAULTS))}."


def positive_numbers(names: tuple[str, ...], check_id: str) -> list[CheckMessage]:
    """An error for each of the ``TRACING_APP`` keys ``names`` that is not a positive number."""
    messages: list[CheckMessage] = []
    for name in names:
        value = getattr(app_settings, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            messages.append(
                Error(f"TRACING_APP[{name!r}] must be a positive number, not {value!r}.", id=check_id)
            )
    return messages


def known_database(name: str, check_id: str) -> list[CheckMessage]:
    """An error when the ``TRACING_APP`` key ``name`` names a database alias missing from DATABASES."""
    alias = getattr(app_settings, name)
    if alias in settings.DATABASES:
        return []
    return [Error(f"TRACING_APP[{name!r}] is {alias!r}, which is not in DATABASES.", id=check_id)]
