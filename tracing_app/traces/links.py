"""Links from a trace to the records it touched, from ``TRACE_ADMIN_LINKS``.

The setting maps an attribute key to an admin URL name that takes the value as its one argument
(``{"order_id": "admin:shop_order_change"}``), or is the dotted path of a function ``(key, value)``
returning ``(label, url)`` pairs, for records that need more than one link or a lookup. Values are
collected from every event's attributes and from task keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.module_loading import import_string

from tracing_app.conf import app_settings
from tracing_app.traces.models import TraceEvent

Link = tuple[str, str]
_MOST_VALUES = 20


def related_links(events: Iterable[TraceEvent]) -> list[Link]:
    """``(label, url)`` pairs for the configured keys' values among ``events``, first seen first."""
    registry = app_settings.TRACE_ADMIN_LINKS
    if not registry:
        return []
    resolve = _resolver(registry)
    values: dict[tuple[str, str], None] = {}
    for event in events:
        for key, value in _pairs(event.attributes):
            if resolve.wants(key) and isinstance(value, str | int) and not isinstance(value, bool):
                values[(key, str(value))] = None
                if len(values) >= _MOST_VALUES:
                    break
    links: dict[str, str] = {}
    for key, value in values:
        for label, url in resolve(key, value):
            links.setdefault(url, label)
    return [(label, url) for url, label in links.items()]


def _pairs(attributes: Any) -> Iterable[tuple[str, Any]]:
    if not isinstance(attributes, dict):
        return
    yield from attributes.items()
    kwargs = attributes.get("kwargs")
    if isinstance(kwargs, dict):
        yield from kwargs.items()


class _Resolver:
    def __init__(self, wants: Callable[[str], bool], links: Callable[[str, str], Iterable[Link]]) -> None:
        self.wants = wants
        self._links = links

    def __call__(self, key: str, value: str) -> list[Link]:
        try:
            return [(str(label), str(url)) for label, url in self._links(key, value) or ()]
        except (NoReverseMatch, ValueError, TypeError):
            return []


def _resolver(registry: dict[str, str] | str) -> _Resolver:
    if isinstance(registry, str):
        return _Resolver(lambda key: True, import_string(registry))

    def by_name(key: str, value: str) -> list[Link]:
        return [
            (f"{key.removesuffix('_id').replace('_', ' ')} {value}", reverse(registry[key], args=[value]))
        ]

    return _Resolver(registry.__contains__, by_name)
