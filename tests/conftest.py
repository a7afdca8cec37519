"""Keeps each group of tests under its own settings: tests/demo needs the demo's (``settings.test``, with
``checkout_demo`` installed), every other folder the library's (``tests.project.settings``). A bare ``pytest``
runs the library's tests; ``pytest --ds=settings.test`` runs the demo's."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.support.browser import chromium  # noqa: F401  (fixture)
from tests.support.memory_broker import published  # noqa: F401  (fixture)
from tests.support.worker import rabbitmq_url, redis_url  # noqa: F401  (fixtures)

TESTS = Path(__file__).resolve().parent
DEMO_TESTS = TESTS / "demo"


def _demo_settings() -> bool:
    return "checkout_demo" in settings.INSTALLED_APPS


def pytest_configure(config: pytest.Config) -> None:
    """A folder or file named on the command line under the other group's settings is an error, not an
    empty run."""
    demo_settings = _demo_settings()
    for arg in config.args:
        path = (config.invocation_params.dir / arg.split("::")[0]).resolve()
        if path == TESTS or not path.is_relative_to(TESTS):
            continue
        if path.is_relative_to(DEMO_TESTS) != demo_settings:
            wanted = "settings.test" if path.is_relative_to(DEMO_TESTS) else "tests.project.settings"
            raise pytest.UsageError(f"{arg} runs under --ds={wanted} (see ./dev)")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if collection_path.parent != TESTS or collection_path.name == "conftest.py":
        return None
    return (collection_path == DEMO_TESTS) != _demo_settings() or None
