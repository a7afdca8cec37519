from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _handlers_restored() -> Iterator[None]:
    """Celery's logging setup signals, sent by some of these tests, instrument every handler in the
    process (filters, formatter): each handler gets back what it had, so later tests see the project's
    own logging."""
    saved = {
        handler: (list(handler.filters), handler.formatter)
        for candidate in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
        if isinstance(candidate, logging.Logger)
        for handler in candidate.handlers
    }
    yield
    for handler, (filters, formatter) in saved.items():
        handler.filters = filters
        handler.setFormatter(formatter)
