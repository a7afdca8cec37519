"""The benchmarks' own PostgreSQL database (``tr_bench`` by default), created and migrated on first use.

Sections that need a database share it and delete what they wrote, except the trace store's generated
events, kept for the next run of the same size. ``BENCH_DATABASE_URL`` points the benchmarks at another
database.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

from benchmarks.isolation import ROOT

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/tr_bench"


def url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)


@functools.cache
def prepare() -> str:
    """Create the database if it is missing and apply the migrations; returns its URL."""
    target = url()
    name = urlsplit(target).path.lstrip("/")
    maintenance = urlunsplit(urlsplit(target)._replace(path="/postgres"))
    with psycopg.connect(maintenance, autocommit=True) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "--skip-checks", "--verbosity", "0"],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.django_settings",
            # The configuration with the most apps installed, so every table any section uses exists.
            "BENCH_EDGE": "trace_store",
            "BENCH_DATABASE_URL": target,
        },
        check=True,
    )
    return target
