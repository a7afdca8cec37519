"""One transaction rebuilt from its events: the causal tree of hops, the waterfall and the timeline.

Shared by the admin's trace page and ``manage.py trace``, so both tell the same story. Order comes from
the Lamport ``sequence``, never from timestamps: hosts' clocks disagree. At equal sequence numbers a
cause comes before its effects (the shallower hop first), then row order. A hop's parent is the
``causation_id`` of its first event that names another hop; a parent the trace does not contain (an
upstream service, a purged hop) makes the hop a root.

The waterfall is drawn on wall-clock time: each hop from its first to its last event, each attempt of a
retried task its own segment. Where a host's clock puts a hop before the event that caused it, the hop
is moved right to just after its cause, and the timeline says so (:attr:`Timeline.clock_skew_ms`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.utils import timezone

from tracing_app.traces import tracebacks
from tracing_app.traces.models import Kind, TraceEvent
from tracing_app.traces.summary import Figures, figures_of

_HOP_KINDS = {
    "request.started": "request",
    "request.finished": "request",
    "task.started": "task",
    "task.retried": "task",
    "task.succeeded": "task",
    "task.failed": "task",
    # A stored transaction picked up again by a job (tracing_app.resumption): a hop of one instant.
    "transaction.resumed": "resumed",
}
_ENDS = frozenset(
    {"request.finished", "task.retried", "task.succeeded", "task.failed", "transaction.resumed"}
)
_STARTS = frozenset({"request.started", "task.started"})
_MIN_WIDTH_PCT = 0.6
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
    replayed: bool = False
    host: str = ""
    pid: int | None = None
    events: list[TraceEvent] = field(default_factory=list)
    error_events: list[TraceEvent] = field(default_factory=list)
    children: list[Hop] = field(default_factory=list)
    depth: int = 0
    index: int = 0
    offset_pct: float = 0.0
    width_pct: float = 100.0
    segments: list[Segment] = field(default_factory=list)
    #: Milliseconds this hop was moved right because its host's clock put it before its cause.
    shift_ms: float = 0.0

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
        return {
            "failed": "bad",
            "errors": "bad",
            "retried": "warn",
            "refused": "warn",
            "not found": "warn",
            "client error": "warn",
            "replayed": "neutral",
            "running": "neutral",
        }.get(self.outcome, "ok")

    @property
    def outcome(self) -> str:
        """``failed``, ``retried`` (succeeded after retries), ``replayed``, ``refused``, ``not found``,
        ``client error``, ``ok``, ``errors`` or ``running``."""
        if self.failed:
            return "failed"
        if self.status == "":
            return "errors" if self.error_events else "running"
        if self.replayed:
            return "replayed"
        if self.status[:1] == "4" and self.status.isdigit():
            return {"404": "not found", "409": "refused", "403": "refused", "429": "refused"}.get(
                self.status, "client error"
            )
        return "retried" if self.retries else "ok"

    @property
    def attempt_durations(self) -> list[str]:
        """Each attempt's own duration, as measured by the hop (a retried task's attempts)."""
        return [format_duration(segment.duration_ms) for segment in self.segments if segment.closed]

    @property
    def error_summary(self) -> str:
        event = self.error_events[-1] if self.error_events else None
        return describe(event) if event is not None else ""


@dataclass
class Segment:
    """One attempt of a hop on the waterfall: from its start event to its end event."""

    number: int
    started_at: datetime
    ended_at: datetime
    events: list[TraceEvent] = field(default_factory=list)
    outcome: str = "running"
    duration_ms: float | None = None
    closed: bool = False
    offset_pct: float = 0.0
    width_pct: float = 0.0

    @property
    def tone(self) -> str:
        return {"failed": "bad", "retry": "warn", "running": "neutral"}.get(self.outcome, "ok")

    @property
    def label(self) -> str:
        """What hovering the segment tells: the attempt, its outcome and duration, then its events."""
        duration = format_duration(self.duration_ms) if self.duration_ms is not None else "open"
        events = "; ".join(f"#{e.sequence} {_KIND_LABELS.get(e.kind, e.kind)}" for e in self.events[:12])
        more = f"; {len(self.events) - 12} more" if len(self.events) > 12 else ""
        return f"attempt {self.number}: {self.outcome}, {duration} \u2014 {events}{more}"


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
    def attribute_items(self) -> list[tuple[str, str]]:
        """The attributes as key/value text, nested values as compact JSON; the traceback apart."""
        attributes = self.event.attributes if isinstance(self.event.attributes, dict) else {}
        return [
            (
                str(key),
                value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str),
            )
            for key, value in sorted(attributes.items())
            if key != "traceback"
        ]

    @property
    def traceback(self) -> tracebacks.ParsedTraceback | None:
        attributes = self.event.attributes if isinstance(self.event.attributes, dict) else {}
        text = attributes.get("traceback")
        return tracebacks.parse(text) if isinstance(text, str) and text else None


@dataclass
class Timeline:
    correlation_id: str
    hops: list[Hop]
    roots: list[Hop]
    rows: list[Row]
    truncated: bool
    figures: Figures = field(default_factory=Figures)
    #: Largest correction applied to a hop drawn before its cause (0 when clocks agreed).
    clock_skew_ms: float = 0.0
    axis_ms: float = 0.0

    @property
    def root(self) -> Hop | None:
        return self.roots[0] if self.roots else None

    @property
    def outcome(self) -> str:
        """The transaction's outcome: ``ok``, ``failed``, ``compensated``, ``in progress`` or ``refused``."""
        return self.figures.outcome

    @property
    def tone(self) -> str:
        return {"failed": "bad", "compensated": "warn", "refused": "warn", "in progress": "neutral"}.get(
            self.outcome, "ok"
        )

    @property
    def duration_label(self) -> str:
        return format_duration(self.figures.duration_ms)

    @property
    def failed_hops(self) -> list[Hop]:
        return [hop for hop in self.hops if hop.failed]

    @property
    def errors_only(self) -> bool:
        """Every stored event is an error: the transaction was not sampled, only its errors were kept."""
        return bool(self.rows) and all(row.event.error for row in self.rows)

    @property
    def started_at(self) -> datetime | None:
        return self.figures.started_at

    @property
    def ended_at(self) -> datetime | None:
        return self.figures.ended_at

    @property
    def hosts(self) -> list[str]:
        return sorted({row.event.host for row in self.rows if row.event.host})

    @property
    def axis_ticks(self) -> list[tuple[float, str]]:
        """Positions (percent) and labels of the waterfall's time axis."""
        return [(pct, format_duration(self.axis_ms * pct / 100)) for pct in (0, 25, 50, 75, 100)]


def build(correlation_id: str, events: Iterable[TraceEvent], *, truncated: bool = False) -> Timeline:
    """The timeline of ``events`` (one transaction's, in any order)."""
    events = list(events)
    ordered = sorted(events, key=lambda e: (e.sequence, _tie_rank(e.kind), e.pk or 0))
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
    for hop in in_order:
        hop.segments = _segments(hop)
        hop.duration_ms = _hop_duration(hop)
    skew, axis_ms = _place(in_order, hops)
    # A cause before its effects: at one sequence number, the shallower hop's event first.
    causal = sorted(ordered, key=lambda e: (e.sequence, hops[e.hop_id].depth, _tie_rank(e.kind), e.pk or 0))
    rows = [Row(event, hops[event.hop_id], describe(event)) for event in causal]
    return Timeline(correlation_id, in_order, roots, rows, truncated, figures_of(events), skew, axis_ms)


def _tie_rank(kind: str) -> int:
    """At one sequence number, an attempt's end before the next attempt's start: a retry's new attempt
    (in another process) can take the same clock value as the end event of the attempt it follows."""
    return 0 if kind in _ENDS else 2 if kind in _STARTS else 1


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
    if event.kind == "idempotent.replay":
        hop.replayed = True
    if event.kind in _STARTS:
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


def _segments(hop: Hop) -> list[Segment]:
    """The hop's attempts: each from a start event to the end event that follows it."""
    segments: list[Segment] = []
    current: Segment | None = None
    for event in hop.events:
        if current is None or (event.kind in _STARTS and current.closed):
            current = Segment(len(segments) + 1, event.timestamp, event.timestamp)
            segments.append(current)
        current.events.append(event)
        current.ended_at = max(current.ended_at, event.timestamp)
        if event.kind in _ENDS and not current.closed:
            current.closed = True
            current.duration_ms = event.duration_ms
            current.outcome = "retry" if event.kind == "task.retried" else _end_outcome(event)
        elif event.error and not current.closed:
            current.outcome = "failed"
    return segments


def _end_outcome(event: TraceEvent) -> str:
    if event.error or event.kind == "task.failed":
        return "failed"
    return "ok"


def _hop_duration(hop: Hop) -> float | None:
    """Whole-hop duration: one attempt's own measure, or first start to last end over several."""
    closed = [segment for segment in hop.segments if segment.closed]
    if len(hop.segments) == 1 and closed and closed[0].duration_ms is not None:
        return closed[0].duration_ms
    if not hop.segments:
        return None
    first, last = hop.segments[0], hop.segments[-1]
    return (last.ended_at - first.started_at).total_seconds() * 1000


def _place(in_order: Sequence[Hop], hops: dict[str, Hop]) -> tuple[float, float]:
    """Waterfall segments on one time axis; returns the largest clock correction and the axis length.

    Hops come parents first, so a parent's correction is known when its children are placed.
    """
    largest_shift = 0.0
    for hop in in_order:
        parent = hops.get(hop.parent_id) if hop.parent_id else None
        if parent is None or not hop.events:
            continue
        causes = [e for e in parent.events if e.sequence < hop.first_sequence] or parent.events[:1]
        cause_ms = _ms(causes[-1].timestamp) + parent.shift_ms
        start_ms = _ms(hop.events[0].timestamp)
        hop.shift_ms = max(cause_ms - start_ms, 0.0)
        largest_shift = max(largest_shift, hop.shift_ms)
    spans = [
        (_ms(segment.started_at) + hop.shift_ms, _ms(segment.ended_at) + hop.shift_ms)
        for hop in in_order
        for segment in hop.segments
    ]
    if not spans:
        return largest_shift, 0.0
    low = min(start for start, _ in spans)
    axis = max(max(end for _, end in spans) - low, 1e-3)
    for hop in in_order:
        for segment in hop.segments:
            start = _ms(segment.started_at) + hop.shift_ms - low
            end = _ms(segment.ended_at) + hop.shift_ms - low
            segment.offset_pct = round(min(100 * start / axis, 100 - _MIN_WIDTH_PCT), 3)
            segment.width_pct = round(max(100 * (end - start) / axis, _MIN_WIDTH_PCT), 3)
        if hop.segments:
            hop.offset_pct = hop.segments[0].offset_pct
            last = hop.segments[-1]
            hop.width_pct = round(max(last.offset_pct + last.width_pct - hop.offset_pct, _MIN_WIDTH_PCT), 3)
    return largest_shift, axis


def _ms(moment: datetime) -> float:
    return moment.timestamp() * 1000


def describe(event: TraceEvent) -> str:
    """One line saying what the event was, from its kind and attributes (plain text, never markup)."""
    attrs: dict[str, Any] = event.attributes if isinstance(event.attributes, dict) else {}
    kind = event.kind
    if kind == "request.started":
        return f"{attrs.get('method', '')} {attrs.get('path', '')}".strip()
    if kind == "request.finished":
        return f"{event.status} {event.name}".strip()
    if kind == "task.published":
        target = attrs.get("task_id") or attrs.get("routing_key") or ""
        what = "re-queued for retry" if attrs.get("retries") else "sent"
        return f"{what} {short_name(event.name)} \u2192 {target}".strip(" \u2192")
    if kind == "task.queued":
        return f"queued {short_name(event.name)} in the outbox \u2192 {attrs.get('task_id', '')}".strip(
            " \u2192"
        )
    if kind in ("task.publish_deferred", "task.publish_failed"):
        what = "not sent yet, kept for the relay" if kind == "task.publish_deferred" else "not sent"
        exception = str(attrs.get("exception", "")).rpartition(".")[2]
        return f"{what}: {short_name(event.name)} ({exception}: {attrs.get('message', '')})"
    if kind == "task.revoked":
        return "expired before it ran" if attrs.get("expired") else "revoked"
    if kind == "transaction.resumed":
        details = " ".join(f"{key}={value}" for key, value in sorted(attrs.items()))
        return f"resumed: {event.name}" + (f" ({details})" if details else "")
    if kind == "task.started":
        text = f"attempt {int(attrs.get('retries') or 0) + 1}"
        arguments = _call_text(attrs.get("args"), attrs.get("kwargs"))
        return f"{text} \u00b7 {arguments}" if arguments else text
    if kind == "task.retried":
        return f"retry: {attrs.get('reason', '')}".strip()
    if kind == "log":
        return f"[{event.status}] {event.name}: {attrs.get('message', '')}"
    if kind == "annotation":
        return " ".join(f"{key}={value}" for key, value in sorted(attrs.items()))
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
