"""A new Django project built the way the README tells a user to: ``startproject``, then the README's
snippets, then the project's own ``orders`` app; run with ``runserver`` and ``celery worker``."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import psycopg
import requests

from tests.adoption.readme import Snippet, commands
from tests.support.ports import free_port
from tests.support.waiting import wait_until

HERE = Path(__file__).resolve().parent

# Appended last: what any project has of its own (its database, hosts, broker, its app).
ENVIRONMENT = """

# -- the adopting project's environment ----------------------------------------------------------------
import os

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["ADOPTION_DB_NAME"],
        "USER": os.environ["ADOPTION_DB_USER"],
        "HOST": os.environ["ADOPTION_DB_HOST"],
        "PORT": os.environ["ADOPTION_DB_PORT"],
    }
}
DEBUG = os.environ.get("ADOPTION_DEBUG") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS += ["orders"]
CELERY_BROKER_URL = os.environ["ADOPTION_BROKER_URL"]
CELERY_TASK_DEFAULT_QUEUE = os.environ["ADOPTION_QUEUE"]
"""

EXTRA_URLS = """
from orders.failing import boom

urlpatterns += [path("boom/", boom)]
"""


class AdoptedProject:
    def __init__(self, root: Path, database: dict[str, str], broker_url: str, queue: str) -> None:
        self.root = root
        self.database = database
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "proj.settings",
            "PYTHONUNBUFFERED": "1",
            "ADOPTION_DB_NAME": database["NAME"],
            "ADOPTION_DB_USER": database["USER"],
            "ADOPTION_DB_HOST": database["HOST"],
            "ADOPTION_DB_PORT": database["PORT"],
            "ADOPTION_BROKER_URL": broker_url,
            "ADOPTION_QUEUE": queue,
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    # -- building ---------------------------------------------------------------------------------------

    def build(self, chosen: Iterable[Snippet], existing_handler: bool) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.run("-m", "django", "startproject", "proj", str(self.root), manage=False)
        settings = self.root / "proj" / "settings.py"
        shutil.copytree(HERE / "orders", self.root / "orders", ignore=shutil.ignore_patterns("__pycache__"))
        if existing_handler:
            shutil.copy(HERE / "existing_handler.py", self.root / "proj" / "api.py")
            self.append(settings, '\nREST_FRAMEWORK = {"EXCEPTION_HANDLER": "proj.api.exception_handler"}\n')
        for snippet in chosen:
            target = self.root / snippet.path
            target.parent.mkdir(parents=True, exist_ok=True)
            if snippet.path in ("proj/settings.py", "proj/urls.py"):
                self.append(target, "\n" + snippet.code)
            else:
                target.write_text(snippet.code)
        self.append(settings, ENVIRONMENT)
        self.append(self.root / "proj" / "urls.py", EXTRA_URLS)

    @staticmethod
    def append(path: Path, text: str) -> None:
        with path.open("a") as file:
            file.write(text)

    def create_database(self) -> None:
        with self._admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database["NAME"]}"')
            admin.execute(f'CREATE DATABASE "{self.database["NAME"]}"')

    def drop_database(self) -> None:
        with self._admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database["NAME"]}" WITH (FORCE)')

    def _admin_connection(self) -> psycopg.Connection:
        return psycopg.connect(
            dbname="postgres",
            user=self.database["USER"],
            host=self.database["HOST"],
            port=self.database["PORT"],
            autocommit=True,
        )

    def query(self, sql: str) -> list[tuple]:
        with psycopg.connect(
            dbname=self.database["NAME"],
            user=self.database["USER"],
            host=self.database["HOST"],
            port=self.database["PORT"],
        ) as connection:
            return connection.execute(sql).fetchall()

    def readme_commands(self, found: list[Snippet]) -> None:
        for command in commands(found):
            self.run(*command)

    def run(self, *args: str, manage: bool = True) -> str:
        command = [sys.executable, *(["manage.py"] if manage else []), *args]
        done = subprocess.run(
            command, cwd=self.root, env=self.env, capture_output=True, text=True, timeout=180, check=False
        )
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    # -- running ----------------------------------------------------------------------------------------

    def start(self, name: str, args: list[str], debug: bool = False) -> Path:
        output = self.root / f"{name}.out"
        env = {**self.env, "ADOPTION_DEBUG": "1" if debug else "0"}
        with output.open("wb") as out:
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, *args],
                    cwd=self.root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return output

    def web(self, debug: bool) -> str:
        port = free_port()
        output = self.start(
            f"web-{port}", ["manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], debug=debug
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(base) or self._died(output), timeout=60, what=f"runserver on {port}")
        return base

    def worker(self) -> Path:
        output = self.start(
            "worker",
            [
                "-m",
                "celery",
                "-A",
                "proj",
                "worker",
                "--loglevel=INFO",
                "--concurrency=1",
                "--queues",
                self.env["ADOPTION_QUEUE"],
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
        )
        wait_until(
            lambda: " ready." in output.read_text(errors="replace") or self._died(output),
            timeout=90,
            what="the worker",
        )
        return output

    def _died(self, output: Path) -> bool:
        for process in self.processes:
            if process.poll() is not None:
                raise AssertionError(
                    f"a process of the adopted project exited:\n{output.read_text()[-3000:]}"
                )
        return False

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


def _answers(base: str) -> bool:
    try:
        requests.get(f"{base}/nope/", timeout=2)
    except requests.RequestException:
        return False
    return True
