"""Trace events: what each hop of a transaction did, stored for the admin's trace view.

``recorder`` records them (``attributes`` cleans what they carry, ``buffer`` holds them, ``writer`` writes
them in batches); ``models`` stores them; ``timeline`` rebuilds one transaction's causal tree; ``admin``
and the ``trace`` command show it; ``retention`` purges old events.
"""

from tracing_app.traces.recorder import annotate, describe_exception, flush, record

__all__ = ["annotate", "describe_exception", "flush", "record"]
