"""The sampling decision: made once per transaction, the same in every process.

The decision is a pure function of the correlation ID and ``SAMPLE_RATE``: a CRC-32 of the ID compared
with the rate. Any process that sees the ID (a worker that lost the header, the admin, a log pipeline)
reaches the same answer, so a transaction is recorded or dropped whole.
"""

from __future__ import annotations

import zlib

from tracing_app.conf import app_settings

_SPACE = 1 << 32


def is_sampled(correlation_id: str) -> bool:
    """Whether the transaction ``correlation_id`` is recorded at the configured rate."""
    rate = app_settings.SAMPLE_RATE
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    return zlib.crc32(correlation_id.encode()) < rate * _SPACE
