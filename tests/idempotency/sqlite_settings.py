"""``settings.test`` with its test database in a SQLite file, for the subprocess of
test_idempotency_sqlite.py: threads need a real file (the default in-memory test database shares one
cache with table locks, which is not how the embedded default runs)."""

import os

from settings.test import *  # noqa: F403
from settings.test import DATABASES

DATABASES["default"]["TEST"] = {"NAME": os.environ["IDEMPOTENCY_SQLITE_TEST_DB"]}
