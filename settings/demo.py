"""The embedded default: SQLite and a broker that needs no daemon, unless the environment says otherwise."""

from settings.base import *  # noqa: F403
