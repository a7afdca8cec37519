"""Checks of the ``TRACING_APP`` keys every project uses: known keys, header names, IDs, sampling."""

from __future__ import annotations

import difflib
import re
from typing import Any

from django.core.checks import CheckMessage, Error

from tracing_app.conf import DEFAULTS, HEADER_NAME, app_settings

# Values an ID pattern must never accept: they would allow header or log injection.
_HOSTILE_SAMPLES = ("a\r\nb", "a\nb", 'a"b', "a<b>", "a b", "a\x00b", "a\\b", "a{b}", "é")
_FORMATS = frozenset({"ulid", "uuid", "token"})


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    user = app_settings.user_settings()
    return [
        *_unknown_keys(user),
        *_header_names(user),
        *_id_pattern(user.get("ID_PATTERN", DEFAULTS["ID_PATTERN"])),
        *_id_length(user.get("MAX_ID_LENGTH", DEFAULTS["MAX_ID_LENGTH"])),
        *_id_formats(set(user.get("ACCEPTED_FORMATS", DEFAULTS["ACCEPTED_FORMATS"]))),
        *_sample_rate(user.get("SAMPLE_RATE", DEFAULTS["SAMPLE_RATE"])),
    ]


def _unknown_keys(user: dict[str, Any]) -> list[CheckMessage]:
    return [
        Error(f"TRACING_APP has an unknown key {key!r}.", hint=_suggest(key), id="tracing_app.E001")
        for key in user
        if key not in DEFAULTS
    ]


def _suggest(key: str) -> str:
    close = difflib.get_close_matches(key, DEFAULTS, n=1)
    return f"Did you mean {close[0]!r}?" if close else f"Known keys: {', '.join(sorted(DEFAULTS))}."


def _header_names(user: dict[str, Any]) -> list[CheckMessage]:
    return [
        Error(
            f"TRACING_APP header name {header!r} is not a valid HTTP header name.",
            hint="Use letters, digits and hyphens, e.g. 'X-Correlation-ID'.",
            id="tracing_app.E002",
        )
        for header in (user.get("HEADER", DEFAULTS["HEADER"]), *user.get("ALTERNATE_HEADERS", ()))
        if not isinstance(header, str) or not HEADER_NAME.fullmatch(header)
    ]


def _id_pattern(pattern: Any) -> list[CheckMessage]:
    try:
        regex = re.compile(pattern)
    except (re.error, TypeError) as exc:
        return [Error(f"TRACING_APP['ID_PATTERN'] does not compile: {exc}.", id="tracing_app.E003")]
    unsafe = [sample for sample in _HOSTILE_SAMPLES if regex.fullmatch(sample)]
    if not unsafe:
        return []
    return [
        Error(
            f"TRACING_APP['ID_PATTERN'] accepts unsafe values such as {unsafe[0]!r}.",
            hint="Allow only printable ASCII without spaces or quotes, e.g. r'[A-Za-z0-9._:-]+'.",
            id="tracing_app.E006",
        )
    ]


def _id_length(length: Any) -> list[CheckMessage]:
    if isinstance(length, int) and 26 <= length <= 1024:
        return []
    return [
        Error(
            f"TRACING_APP['MAX_ID_LENGTH'] must be an integer from 26 to 1024, not {length!r}.",
            id="tracing_app.E004",
        )
    ]


def _id_formats(formats: set[str]) -> list[CheckMessage]:
    if not formats - _FORMATS:
        return []
    return [
        Error(
            f"TRACING_APP['ACCEPTED_FORMATS'] has unknown formats {sorted(formats - _FORMATS)}.",
            hint=f"Choose from {sorted(_FORMATS)}.",
            id="tracing_app.E007",
        )
    ]


def _sample_rate(rate: Any) -> list[CheckMessage]:
    if isinstance(rate, int | float) and 0.0 <= rate <= 1.0:
        return []
    return [
        Error(
            f"TRACING_APP['SAMPLE_RATE'] must be a number from 0.0 to 1.0, not {rate!r}.",
            id="tracing_app.E005",
        )
    ]
