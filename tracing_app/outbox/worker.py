"""The Celery worker step that runs an outbox relay thread in every worker's main process."""

from __future__ import annotations

from typing import Any

from celery import bootsteps


class OutboxRelayStep(bootsteps.StartStopStep):
    """Starts :class:`~tracing_app.outbox.relay.Relay` with the worker and stops it at shutdown.

    Off with ``TRACING_APP["OUTBOX_RELAY_IN_WORKER"] = False`` (then run ``manage.py relay_outbox``).
    """

    requires = ("celery.worker.components:Pool",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.relay: Any = None

    def start(self, parent: Any) -> None:
        from tracing_app.conf import app_settings

        if not app_settings.OUTBOX_RELAY_IN_WORKER:
            return
        # Imported here: the step is added when the Celery app is created, before Django's apps load.
        from tracing_app.outbox.relay import Relay

        self.relay = Relay()
        self.relay.start()

    def stop(self, parent: Any) -> None:
        if self.relay is not None:
            self.relay.stop()
            self.relay = None
