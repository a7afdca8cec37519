"""The sampling decision: made once per transaction, the same in every process and for every carrier.

The decision is a pure function of a key and ``SAMPLE_RATE``: a CRC-32 of the key compared with the
rate. The key is the correlation ID wherever one exists (every edge, ``bind()``), so any process that
sees the ID (a worker that lost the header, the admin, a log pipeline) reaches the same answer and a
transaction is recorded or dropped whole. OpenTelemetry's root sampler applies the same function to a
trace ID that starts before any correlation ID exists; the HTTP edge then adopts that span's decision.
"""

from __future__ import annotations

import zlib

from tracing_app.conf import app_settings

_SPACE = 1 << 32


def is_sampled(key: str) -> bool:
    """Whether the transaction keyed by ``key`` (its correlation ID) is recorded at the configured rate."""
    rate = app_settings.SAMPLE_RATE
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(key.encode()) < rate * _SPACE
