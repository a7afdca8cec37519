"""``manage.py rundemo``: set the demo up and run its web server, Celery worker and beat until Ctrl-C."""

from __future__ import annotations

import os
import secrets
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections

from checkout_demo.catalog import seed_products
from checkout_demo.customers import ensure_customers
from checkout_demo.links import traces_path
from checkout_demo.supervisor import Child, Supervisor

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Migrate, seed products, create the demo admin, collect static files, then run the web server "
        "(gunicorn), a Celery worker and Celery beat together until Ctrl-C (SIGINT) or SIGTERM, which "
        "stops all three."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("DEMO_PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes.")
        parser.add_argument("--threads", type=int, default=8, help="Threads per gunicorn worker.")
        parser.add_argument("--concurrency", type=int, default=2, help="Celery worker processes.")
        parser.add_argument("--grace", type=float, default=20.0, help="Seconds to wait for a clean stop.")

    def handle(
        self,
        *args: Any,
        host: str,
        port: int,
        web_workers: int,
        threads: int,
        concurrency: int,
        grace: float,
        **options: Any,
    ) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        created = seed_products()
        username, password = ensure_admin(Path(settings.VAR_DIR))
        ensure_customers(Path(settings.VAR_DIR))
        connections.close_all()
        self.stdout.write(f"Database ready; {created} products created.")
        call_command("collectstatic", interactive=False, verbosity=0)

        base_url = f"http://{host}:{port}"
        web = Child(
            "web server",
            web_server_argv(host, port, workers=web_workers, threads=threads, grace=grace),
            stop_signal=signal.SIGTERM,
        )
        worker = Child(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "--app=settings.celery",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={concurrency}",
                f"--hostname=demo.{os.getpid()}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            ready_marker=b" ready.",
        )
        beat = Child(
            "beat",
            [
                sys.executable,
                "-m",
                "celery",
                "--app=settings.celery",
                "beat",
                "--loglevel=INFO",
                f"--schedule={Path(settings.VAR_DIR) / 'celerybeat-schedule'}",
            ],
            ready_marker=b"beat: Starting",
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE}

        def ready() -> bool:
            return worker.ready.is_set() and beat.ready.is_set() and answers(f"{base_url}/api/ping/")

        def announce() -> None:
            self.stdout.write(banner(base_url, username, password, web.pid, worker.pid, beat.pid))

        supervisor = Supervisor([web, worker, beat], grace=grace)
        code = supervisor.run(env, Path(settings.BASE_DIR), is_ready=ready, on_ready=announce)
        if code:
            sys.exit(code)


def web_server_argv(host: str, port: int, *, workers: int, threads: int, grace: float) -> list[str]:
    """gunicorn serving the demo: ``workers`` processes of ``threads`` threads each.

    Requests are logged by tracing_app's access log, so gunicorn's own is left off. Its control socket
    is too: its default path is one per user, which two demos on one machine would fight over. On
    SIGTERM gunicorn lets requests in flight finish for up to ``grace`` seconds.
    """
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "settings.wsgi:application",
        f"--bind={host}:{port}",
        f"--workers={workers}",
        f"--threads={threads}",
        "--worker-class=gthread",
        f"--graceful-timeout={max(1, int(grace))}",
        "--no-control-socket",
    ]


def ensure_admin(var_dir: Path) -> tuple[str, str]:
    """The demo superuser, with a password generated once and kept in ``VAR_DIR/admin-password.txt``."""
    password_file = var_dir / "admin-password.txt"
    if password_file.exists():
        password = password_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        password_file.touch(mode=0o600)
        password_file.write_text(password + "\n")
    user, _ = get_user_model().objects.get_or_create(
        username=ADMIN_USERNAME, defaults={"email": "admin@example.com"}
    )
    if not (user.is_staff and user.is_superuser and user.check_password(password)):
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
    return ADMIN_USERNAME, password


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own http URL)
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def banner(base_url: str, username: str, password: str, web_pid: int, worker_pid: int, beat_pid: int) -> str:
    database = settings.DATABASES["default"]
    broker = settings.CELERY_BROKER_URL
    where = settings.EMBEDDED_BROKER_DIR if broker.startswith("filesystem") else broker.split("@")[-1]
    rows = [
        ("API", f"{base_url}/api/orders/   (products: /api/products/)"),
        ("OpenAPI", f"{base_url}/api/schema/   (Swagger UI: {base_url}/api/docs/)"),
        ("Admin", f"{base_url}/admin/   user: {username}   password: {password}"),
        ("Traces", f"{base_url}{traces_path()}" if traces_path() else "(the trace view is not installed)"),
        ("Database", f"{database['ENGINE'].rsplit('.', 1)[-1]} {database['NAME']}"),
        ("Broker", f"{broker.split(':', 1)[0]} ({where})"),
        ("Processes", f"web server pid {web_pid}, worker pid {worker_pid}, beat pid {beat_pid}"),
        ("Try it", f"python manage.py checkout_demo --url {base_url}   (in another terminal)"),
        ("Stop", "Ctrl-C"),
    ]
    width = max(len(label) for label, _ in rows)
    lines = "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)
    return f"\nThe checkout demo is running.\n{lines}\n"
