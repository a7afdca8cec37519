"""The embedded default: SQLite and a broker that needs no daemon, unless the environment says otherwise."""

from settings.base import *  # noqa: F403
from settings.base import VAR_DIR

VAR_DIR.mkdir(parents=True, exist_ok=True)
