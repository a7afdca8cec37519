"""The machine and software a run measured, stated next to every table."""

from __future__ import annotations

import os
import platform
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

# Distributions whose versions change the figures: the framework, the product's extras, the competitors.
PACKAGES = (
    "Django",
    "djangorestframework",
    "celery",
    "kombu",
    "psycopg",
    "gunicorn",
    "opentelemetry-sdk",
    "django-guid",
    "django-log-request-id",
    "django-cid",
    "django-structlog",
)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def describe() -> dict[str, Any]:
    cores = os.cpu_count() or 1
    model = cpu_model()
    python = platform.python_version()
    packages = versions()
    summary = (
        f"{model}, {cores} cores, {platform.system()} {platform.release()}, "
        f"Python {python} ({platform.python_implementation()}), Django {packages['Django']}, "
        f"DRF {packages['djangorestframework']}, Celery {packages['celery']}, kombu {packages['kombu']}"
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": model,
        "cores": cores,
        "os": f"{platform.system()} {platform.release()}",
        "python": f"{python} ({platform.python_implementation()})",
        "packages": packages,
        "load_average_start": os.getloadavg()[0],
        "summary": summary,
    }
