"""The benchmarks' own PostgreSQL database (``tr_bench`` by default), created and migrated on first use.

Sections that need a database share it and delete what they wrote, except the trace store's generated
events, kept for the next run of the same size. Data sets too large to share one database live in
databases named after it with a suffix (``tr_bench_10m``, ``tr_bench_purge_seed``). ``BENCH_DATABASE_URL``
points the benchmarks at another database.
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


def url(suffix: str = "") -> str:
    """The benchmark database's URL, or with ``suffix`` that of its sibling named ``<name><suffix>``."""
    base = urlsplit(os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL))
    return urlunsplit(base._replace(path=base.path + suffix))


def maintenance_url() -> str:
    """The server's ``postgres`` database, for creating and dropping the benchmark databases."""
    return urlunsplit(urlsplit(url())._replace(path="/postgres"))


@functools.cache
def prepare(suffix: str = "") -> str:
    """Create the database (see :func:`url`) if it is missing and apply the migrations; returns its URL."""
    target = url(suffix)
    name = urlsplit(target).path.lstrip("/")
    with psycopg.connect(maintenance_url(), autocommit=True) as connection:
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
