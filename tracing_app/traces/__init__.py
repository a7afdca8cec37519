"""Trace events: what each hop of a transaction did, stored for the admin's trace view.

``tracing_app.recorder`` writes them; ``models`` stores them; ``timeline`` rebuilds one transaction's causal
tree; ``admin`` and the ``trace`` command show it; ``retention`` purges old events.
"""
