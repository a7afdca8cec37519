"""The trace store's purge and search tests again on SQLite, the embedded default, in a process of
their own (the suite runs them on PostgreSQL, marked services)."""

from __future__ import annotations

from pathlib import Path

from tests.support.on_sqlite import run_on_sqlite

MODULES = ["tests/traces/test_purge.py", "tests/traces/test_search_scale.py"]


def test_purge_and_search_on_sqlite(tmp_path: Path) -> None:
    summary = run_on_sqlite(MODULES, tmp_path / "store.sqlite3")
    assert " passed" in summary and "failed" not in summary, summary
