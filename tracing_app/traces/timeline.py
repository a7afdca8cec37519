"""One transaction rebuilt from its events: the causal tree of hops and the timeline in sequence order.

Shared by the admin's trace page and ``manage.py trace``, so both tell the same story. Order comes from
the Lamport ``sequence`` (ties broken by row ID), never from timestamps: hosts' clocks disagree.
A hop's parent is the ``causation_id`` of its first event that names another hop; a parent the
trace does not contain (an upstream service, a purged hop) makes the hop a root.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from tracing_app.traces.models import Kind, TraceEvent

_HOP_KINDS = {
    "request.started": "request",
    "request.finished": "request",
    "task.started": "task",
    "task.retried": "task",
    "task.succeeded": "task",
    "task.failed": "task",
    "message.consumed": "message",
}
_ENDS = frozenset({"request.finished", "task.retried", "task.succeeded", "task.failed"})
_MAX_INDENT = 8
_KIND_LABELS = dict(Kind.choices)


@dataclass
class Hop:
    """One request, task or consumed message, with every attempt of it."""

    hop_id: str
    first_sequence: int
    last_sequence: int
    kind: str = "hop"
    name: str = ""
    parent_id: str | None = None
    external_parent: str | None = None
    status: str = ""
    duration_ms: float | None = None
    attempts: int = 0
    retries: int = 0
    failed: bool = False
    host: str = ""
    pid: int | None = None
    events: list[TraceEvent] = field(default_factory=list)
    error_events: list[TraceEvent] = field(default_factory=list)
    children: list[Hop] = field(default_factory=list)
    depth: int = 0
    index: int = 0
    offset_pct: float = 0.0
    width_pct: float = 100.0

    @property
    def short_name(self) -> str:
        return short_name(self.name)

    @property
    def namespace(self) -> str:
        return self.name[: -len(self.short_name) - 1] if self.short_name != self.name else ""

    @property
    def indent(self) -> int:
        """Depth for styling, capped: deeper hops share the deepest indentation."""
        return min(self.depth, _MAX_INDENT)

    @property
    def duration_label(self) -> str:
        return format_duration(self.duration_ms)

    @property
    def tone(self) -> str:
        return {"failed": "bad", "errors": "bad", "retried": "warn", "running": "neutral"}.get(
            self.outcome, "ok"
        )

    @property
    def outcome(self) -> str:
        """``failed``, ``retried`` (succeeded after retries), ``ok``, ``errors`` or ``running``."""
        if self.failed:
            return "failed"
        if self.status == "":
            return "errors" if self.error_events else "running"
        return "retried" if self.retries else "ok"

    @property
    def error_summary(self) -> str:
        event = self.error_events[-1] if self.error_events else None
        return describe(event) if event is not None else ""


@dataclass
class Row:
    """One event on the timeline, with the hop it belongs to."""

    event: TraceEvent
    hop: Hop
    summary: str
    #: Where the admin links this row (an idempotent replay's original transaction); set by the view.
    link: str = ""

    @property
    def depth(self) -> int:
        return self.hop.depth

    @property
    def duration_label(self) -> str:
        return format_duration(self.event.duration_ms) if self.event.duration_ms is not None else ""

    @property
    def kind_label(self) -> str:
        return _KIND_LABELS.get(self.event.kind, self.event.kind)

    @property
    def time_label(self) -> str:
        return timezone.localtime(self.event.timestamp).strftime("%H:%M:%S.%f")[:-3]

    @property
    def tone(self) -> str:
        return status_tone(self.event.status, self.event.error)

    @property
    def attributes_json(self) -> str:
        return json.dumps(self.event.attributes, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class Timeline:
    correlation_id: str
    hops: list[Hop]
    roots: list[Hop]
    rows: list[Row]
    truncated: bool

    @property
    def root(self) -> Hop | None:
        return self.roots[0] if self.roots else None

    @property
    def outcome(self) -> str:
        """``failed``, ``errors`` (unsampled, errors only), ``running`` or ``completed``."""
        if self.failed_hops:
            return "failed"
        if self.errors_only:
            return "errors"
        root = self.root
        return "running" if root is None or root.outcome == "running" else "completed"

    @property
    def tone(self) -> str:
        return {"failed": "bad", "errors": "bad", "running": "neutral"}.get(self.outcome, "ok")

    @property
    def failed_hops(self) -> list[Hop]:
        return [hop for hop in self.hops if hop.failed]

    @property
    def error_count(self) -> int:
        """Failures, each counted once: a hop's closing event (a 500, ``task.failed``) reports the
        exception its own ``error`` event recorded, so it counts only for a hop that recorded no other
        error."""
        recorded = {row.hop.hop_id for row in self.rows if row.event.error and row.event.kind not in _ENDS}
        return sum(
            1
            for row in self.rows
            if row.event.error and (row.event.kind not in _ENDS or row.hop.hop_id not in recorded)
        )

    @property
    def errors_only(self) -> bool:
        """Every stored event is an error: the transaction was not sampled, only its errors were kept."""
        return bool(self.rows) and all(row.event.error for row in self.rows)

    @property
    def started_at(self) -> datetime | None:
        return min((row.event.timestamp for row in self.rows), default=None)

    @property
    def ended_at(self) -> datetime | None:
        return max((row.event.timestamp for row in self.rows), default=None)

    @property
    def hosts(self) -> list[str]:
        return sorted({row.event.host for row in self.rows if row.event.host})


def build(correlation_id: str, events: Iterable[TraceEvent], *, truncated: bool = False) -> Timeline:
    """The timeline of ``events`` (one transaction's, in any order)."""
    ordered = sorted(events, key=lambda e: (e.sequence, e.pk or 0))
    hops: dict[str, Hop] = {}
    for event in ordered:
        hop = hops.get(event.hop_id)
        if hop is None:
            hop = hops[event.hop_id] = Hop(event.hop_id, event.sequence, event.sequence)
        _apply(hop, event)

    for hop in hops.values():
        if hop.parent_id is not None and hop.parent_id not in hops:
            hop.external_parent, hop.parent_id = hop.parent_id, None
    roots = [hop for hop in hops.values() if hop.parent_id is None]
    for hop in hops.values():
        if hop.parent_id is not None:
            hops[hop.parent_id].children.append(hop)

    in_order: list[Hop] = []
    visited: set[str] = set()
    for root in roots:
        _walk(root, 0, in_order, visited)
    # Causation links that loop back (malformed input) leave hops unreached; show them as roots.
    for hop in hops.values():
        if hop.hop_id not in visited:
            hop.parent_id = None
            roots.append(hop)
            _walk(hop, 0, in_order, visited)
    _place(in_order)
    rows = [Row(event, hops[event.hop_id], describe(event)) for event in ordered]
    return Timeline(correlation_id, in_order, roots, rows, truncated)


def _apply(hop: Hop, event: TraceEvent) -> None:
    hop.events.append(event)
    hop.last_sequence = max(hop.last_sequence, event.sequence)
    if hop.parent_id is None and event.causation_id and event.causation_id != hop.hop_id:
        hop.parent_id = event.causation_id
    if not hop.host:
        hop.host, hop.pid = event.host, event.pid
    hop_kind = _HOP_KINDS.get(event.kind)
    if hop_kind is not None:
        hop.kind = hop_kind
        if event.name and (not hop.name or event.kind == "request.finished"):
            hop.name = event.name
        elif event.kind == "request.started" and not hop.name:
            # Until the URL resolves (never, for a 404), the request is known by its method and path.
            hop.name = describe(event)
    if event.error:
        hop.error_events.append(event)
    if event.kind in ("request.started", "task.started", "message.consumed"):
        hop.attempts += 1
    if event.kind == "task.retried":
        hop.retries += 1
    if event.kind in _ENDS:
        hop.status = event.status or event.kind.rpartition(".")[2]
        hop.duration_ms = event.duration_ms
        hop.failed = event.error or event.kind == "task.failed"
    elif event.error and hop.status == "":
        hop.failed = True


def _walk(hop: Hop, depth: int, out: list[Hop], visited: set[str]) -> None:
    if hop.hop_id in visited:
        return
    visited.add(hop.hop_id)
    hop.depth = depth
    out.append(hop)
    hop.index = len(out)
    for child in sorted(hop.children, key=lambda h: h.first_sequence):
        _walk(child, depth + 1, out, visited)


def _place(hops: Sequence[Hop]) -> None:
    """Waterfall bars on the logical clock: each hop spans its first to its last sequence number."""
    if not hops:
        return
    low = min(hop.first_sequence for hop in hops)
    high = max(hop.last_sequence for hop in hops)
    span = max(high - low, 1)
    for hop in hops:
        hop.offset_pct = round(100 * (hop.first_sequence - low) / (span + 1), 2)
        hop.width_pct = round(max(100 * (hop.last_sequence - hop.first_sequence + 1) / (span + 1), 1.5), 2)


def describe(event: TraceEvent) -> str:
    """One line saying what the event was, from its kind and attributes (plain text, never markup)."""
    attrs: dict[str, Any] = event.attributes if isinstance(event.attributes, dict) else {}
    kind = event.kind
    if kind == "request.started":
        return f"{attrs.get('method', '')} {attrs.get('path', '')}".strip()
    if kind == "request.finished":
        return f"{event.status} {event.name}".strip()
    if kind in ("task.published", "message.published"):
        target = attrs.get("task_id") or attrs.get("routing_key") or ""
        what = "re-queued for retry" if attrs.get("retries") else "sent"
        return f"{what} {short_name(event.name)} \u2192 {target}".strip(" \u2192")
    if kind == "task.started":
        text = f"attempt {int(attrs.get('retries') or 0) + 1}"
        arguments = _call_text(attrs.get("args"), attrs.get("kwargs"))
        return f"{text} \u00b7 {arguments}" if arguments else text
    if kind == "task.retried":
        return f"retry: {attrs.get('reason', '')}".strip()
    if kind == "log":
        return f"[{event.status}] {event.name}: {attrs.get('message', '')}"
    if kind == "idempotent.replay":
        first = attrs.get("first_correlation_id") or "an earlier transaction"
        return f"replayed the outcome of {event.name or 'an operation'} first answered in {first}"
    if "exception" in attrs or "message" in attrs:
        exception = str(attrs.get("exception", "")).rpartition(".")[2]
        return f"{exception}: {attrs.get('message', '')}".strip(": ")
    return event.name


def short_name(name: str) -> str:
    """``"reserve_stock"`` for ``"shop.tasks.reserve_stock"``: the part people say (dotted paths only)."""
    if " " in name or "/" in name:
        return name
    return name.rpartition(".")[2] or name


def _call_text(args: Any, kwargs: Any, limit: int = 160) -> str:
    parts = [repr(value) for value in args] if isinstance(args, list) else []
    if isinstance(kwargs, dict):
        parts += [f"{key}={value!r}" for key, value in kwargs.items()]
    text = ", ".join(parts)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_duration(ms: float | None) -> str:
    """``"0.42 ms"``, ``"12.3 ms"``, ``"1.24 s"``, ``"2 min 03 s"``; an em dash when unknown."""
    if ms is None:
        return "\u2014"
    if ms < 1:
        return f"{ms:.2f} ms"
    if ms < 1000:
        return f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes} min {seconds:02d} s"


def status_tone(status: str, error: bool = False) -> str:
    """``ok``, ``warn``, ``bad`` or ``neutral``: how a status reads at a glance."""
    code = int(status) if status.isdigit() else None
    if error or status in ("FAILURE", "ERROR", "CRITICAL") or (code is not None and code >= 500):
        return "bad"
    if status in ("RETRY", "WARNING") or (code is not None and code >= 400):
        return "warn"
    if status == "SUCCESS" or code is not None:
        return "ok"
    return "neutral"
