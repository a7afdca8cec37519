"""The embedded default: SQLite and a broker that needs no daemon, unless the environment says otherwise."""

from settings.base import *  # noqa: F403
from settings.base import EMBEDDED_BROKER_DIR, EMBEDDED_RESULTS_DIR, VAR_DIR

VAR_DIR.mkdir(parents=True, exist_ok=True)
# The embedded Celery broker and result backend expect their folders to exist.
for folder in (EMBEDDED_BROKER_DIR / "messages", EMBEDDED_BROKER_DIR / "control", EMBEDDED_RESULTS_DIR):
    folder.mkdir(parents=True, exist_ok=True)
