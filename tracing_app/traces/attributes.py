"""Attribute cleaning: what an event's attributes become before they are stored.

A copy made of plain JSON values, bounded in depth, items, string length and total size, with sensitive
keys masked; cheap for the small dicts most events carry, since the size is bounded while copying and
encoded only when the bound is exceeded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from tracing_app.conf import app_settings

#: The longest string an attribute keeps (a traceback keeps its end).
MAX_STRING = 2000

_MAX_DEPTH = 4
_MAX_ITEMS = 50
_REDACTED = "[redacted]"


def clean_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of ``attributes`` within ``TRACE_MAX_ATTRIBUTES_BYTES``.

    Values are copied now, so later changes by the caller are not recorded. Keys matching
    ``TRACE_REDACT_KEYS`` are masked at every depth; strings lose NUL characters (PostgreSQL refuses
    them); anything that is not JSON becomes its bounded ``repr``. If the result is still too large,
    strings are cut shorter, and as a last resort the event keeps only a note of the size.
    """
    redact = app_settings.redact_regex
    limit = app_settings.TRACE_MAX_ATTRIBUTES_BYTES
    flat = _flat_copy(attributes, redact, limit)
    return _bounded_copy(attributes, redact, limit) if flat is None else flat


def _bounded_copy(attributes: Mapping[str, Any], redact: re.Pattern[str], limit: int) -> dict[str, Any]:
    """Any attributes: copied by :class:`_Copy`, with strings cut shorter until the copy fits."""
    string_limit = MAX_STRING
    while True:
        copy = _Copy(redact, string_limit)
        cleaned = copy.mapping(attributes, 0)
        # The bound is never below the real size, so a copy within it needs no encoding: most events.
        if copy.size_bound <= limit:
            return cleaned
        size = len(json.dumps(cleaned, ensure_ascii=False))
        if size <= limit:
            return cleaned
        if string_limit <= 64:
            return {"truncated": True, "bytes": size}
        string_limit //= 4


def _flat_copy(attributes: Mapping[str, Any], redact: re.Pattern[str], limit: int) -> dict[str, Any] | None:
    """What :class:`_Copy` makes of the common case, made without it: plain string keys and short
    strings, ints, booleans or None as values, within the size limit. None for anything else.

    Events from the edges (method, path, route, task names, counts) all look like this, and the writer
    cleans two of them per request, so skipping the general copy's per-value calls matters here."""
    if len(attributes) > _MAX_ITEMS:
        return None
    cleaned: dict[str, Any] = {}
    # The same bound as _Copy's: "{}", and per item the separators, the quoted key and the value.
    size = 2
    for key, value in attributes.items():
        if type(key) is not str or len(key) > 128 or "\x00" in key:
            return None
        size += 6 + len(key) * (2 if key.isprintable() else 6)
        if redact.search(key.lower()):
            value = _REDACTED
            size += len(_REDACTED) * 2 + 2
        elif type(value) is str:
            if len(value) > MAX_STRING or "\x00" in value:
                return None
            size += len(value) * (2 if value.isprintable() else 6) + 2
        elif type(value) is int:
            size += value.bit_length() // 3 + 2
        elif value is None or type(value) is bool:
            size += 5
        else:
            return None
        cleaned[key] = value
    return cleaned if size <= limit else None


class _Copy:
    """One pass of :func:`clean_attributes`: the copy, and while it is made, an upper bound on the length
    of its JSON (``json.dumps(copy, ensure_ascii=False)``), counted from lengths without encoding."""

    __slots__ = ("redact", "size_bound", "string_limit")

    def __init__(self, redact: re.Pattern[str], string_limit: int) -> None:
        self.redact = redact
        self.string_limit = string_limit
        self.size_bound = 0

    def mapping(self, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
        cleaned: dict[str, Any] = {}
        # "{}", and per item ": " and ", " (one separator more than written: still a bound).
        self.size_bound += 2
        for index, (key, item) in enumerate(value.items()):
            self.size_bound += 4
            if index == _MAX_ITEMS:
                cleaned[self.counted("...")] = self.counted(f"{len(value) - _MAX_ITEMS} more")
                break
            name = self.text(str(key), 128)
            if self.redact.search(name.lower()):
                cleaned[name] = self.counted(_REDACTED)
            else:
                cleaned[name] = self.value(item, depth + 1)
        return cleaned

    def value(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.text(value, self.string_limit)
        if value is None or isinstance(value, bool):
            self.size_bound += 5
            return value
        if isinstance(value, int):
            # Digits plus sign: log10(2) < 1/3.
            self.size_bound += value.bit_length() // 3 + 2
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                self.size_bound += 24  # the longest repr: "-2.2250738585072014e-308"
                return value
            return self.counted(str(value))
        if depth < _MAX_DEPTH:
            if isinstance(value, Mapping):
                return self.mapping(value, depth)
            if isinstance(value, list | tuple | set | frozenset):
                self.size_bound += 2 + 2 * min(len(value), _MAX_ITEMS + 1)
                items = [self.value(item, depth + 1) for item in list(value)[:_MAX_ITEMS]]
                if len(value) > _MAX_ITEMS:
                    items.append(self.counted(f"... {len(value) - _MAX_ITEMS} more"))
                return items
        try:
            return self.text(repr(value), self.string_limit)
        except Exception:
            return self.counted(f"<unrepresentable {type(value).__name__}>")

    def text(self, value: str, limit: int) -> str:
        return self.counted(cut(value, limit))

    def counted(self, text: str) -> str:
        # Quoted, each character escaped in at most two characters ('"' as '\\"') when printable, else
        # six (a control character as "\u001f").
        self.size_bound += len(text) * (2 if text.isprintable() else 6) + 2
        return text


def cut(text: str, limit: int = MAX_STRING) -> str:
    """``text`` without NUL characters (PostgreSQL refuses them), cut to ``limit`` with its length noted."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
