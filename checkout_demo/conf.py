"""The demo's own settings: ``settings.CHECKOUT_DEMO`` merged over :data:`DEFAULTS`, read on each use."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Largest request body the order API parses; bigger bodies get 413 before any JSON is read.
    "MAX_BODY_BYTES": 64 * 1024,
    # Orders per page in GET /api/orders/ (clients may ask for up to MAX_PAGE_SIZE with ?page_size=).
    "PAGE_SIZE": 20,
    "MAX_PAGE_SIZE": 100,
    # Retries of a charge whose gateway call timed out, and the backoff between them: BACKOFF seconds,
    # doubled on each retry, capped at BACKOFF_MAX. After the last retry the checkout fails and compensates.
    "CHARGE_MAX_RETRIES": 3,
    "CHARGE_RETRY_BACKOFF": 0.5,
    "CHARGE_RETRY_BACKOFF_MAX": 8.0,
    # The reconciler (checkout_demo.reconcile_orders, on beat: CELERY_BEAT_SCHEDULE) resumes orders that have
    # not left processing/reserved/paid for RECONCILE_AFTER seconds, at most RECONCILE_BATCH_SIZE per run.
    # RECONCILE_AFTER must exceed a slow but healthy checkout (charge retries and their backoff).
    "RECONCILE_AFTER": 60,
    "RECONCILE_BATCH_SIZE": 100,
    # The simulated payment gateway (checkout_demo.gateway); see Faults for what each key does.
    "GATEWAY": {},
}


def demo_settings() -> dict[str, Any]:
    """The merged settings; cheap enough to call per use, so ``override_settings`` always applies."""
    return {**DEFAULTS, **(getattr(settings, "CHECKOUT_DEMO", None) or {})}
