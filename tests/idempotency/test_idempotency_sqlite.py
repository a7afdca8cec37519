"""The embedded default (SQLite) still works: the single-connection tests run again on it."""

from __future__ import annotations

from pathlib import Path

from tests.support.on_sqlite import run_on_sqlite


def test_single_connection_behaviour_on_sqlite(tmp_path: Path) -> None:
    summary = run_on_sqlite(["tests/idempotency/sqlite_embedded.py"], tmp_path / "embedded.sqlite3")
    assert " passed" in summary
    assert "skipped" not in summary and "deselected" not in summary, summary
