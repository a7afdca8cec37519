"""A new project built from the README's own "Add it to your project" snippets, on PostgreSQL with a
Celery worker on Redis: what a user following the README gets, asserted end to end.

``plain``: JSON logs, DRF with our handler. ``composed``: a project that already had its own DRF
exception handler and text logs, and adds django-cors-headers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from django.conf import settings
from django.urls import reverse

from tests.adoption.project import AdoptedProject
from tests.adoption.readme import commands, snippets
from tests.support.waiting import wait_until
from tests.support.worker import delete_queues, unique_queue

pytestmark = [pytest.mark.services]

ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
ORIGIN = "https://app.example.com"
VARIANTS = {
    "plain": {"JSON logs", "DRF", "router"},
    "composed": {"text logs", "DRF", "DRF, existing exception handler", "CORS", "router"},
}
ADA, GRACE, ADMIN = ("ada", "pw-ada"), ("grace", "pw-grace"), ("admin", "pw-admin")


class Running:
    def __init__(self, project: AdoptedProject, variant: str) -> None:
        self.project = project
        self.variant = variant
        self.check_output = project.run("check")
        self.worker_log = project.worker()
        self.web = project.web(debug=False)
        self.debug_web = project.web(debug=True)

    def worker_lines(self) -> list[str]:
        return self.worker_log.read_text(errors="replace").splitlines()


@pytest.fixture(scope="module", params=list(VARIANTS))
def running(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, redis_url: str
) -> Iterator[Running]:
    variant = request.param
    found = snippets()
    chosen = [
        s for s in found if s.language == "python" and (s.label is None or s.label in VARIANTS[variant])
    ]
    database = settings.DATABASES["default"]
    queue = unique_queue("adoption")
    project = AdoptedProject(
        tmp_path_factory.mktemp(f"adoption-{variant}"),
        {
            "NAME": f"{database['NAME']}_adoption_{variant}",
            "USER": database["USER"] or "postgres",
            "HOST": database["HOST"] or "127.0.0.1",
            "PORT": str(database["PORT"] or 5432),
        },
        redis_url,
        queue,
    )
    project.create_database()
    try:
        project.build(chosen, existing_handler=variant == "composed")
        project.run("makemigrations", "orders")
        project.readme_commands(found)  # python manage.py migrate
        project.run(
            "shell",
            "-c",
            "from django.contrib.auth.models import User;"
            f"User.objects.create_user({ADA[0]!r}, password={ADA[1]!r});"
            f"User.objects.create_user({GRACE[0]!r}, password={GRACE[1]!r});"
            f"User.objects.create_superuser({ADMIN[0]!r}, 'admin@example.com', {ADMIN[1]!r})",
        )
        yield Running(project, variant)
    finally:
        project.stop()
        delete_queues(redis_url, queue)
        project.drop_database()


def post(
    base: str, body: dict[str, Any], key: str, auth: tuple[str, str], **headers: str
) -> requests.Response:
    return requests.post(
        f"{base}/api/orders/", json=body, headers={"Idempotency-Key": key, **headers}, auth=auth, timeout=30
    )


def test_the_readme_has_every_step() -> None:
    found = snippets()
    assert any("pip install" in s.code and "tracing-app" in s.code for s in found if s.language == "sh")
    assert ["migrate"] in commands(found)
    labels = {s.label for s in found}
    assert set().union(*VARIANTS.values()) <= labels


def test_system_checks_pass(running: Running) -> None:
    assert "tracing_app." not in running.check_output, running.check_output


def test_a_viewset_post_is_idempotent_per_customer_in_the_envelope(running: Running) -> None:
    web = running.web
    key = str(uuid.uuid4())
    first = post(web, {"item": "mug"}, key, ADA)
    assert first.status_code == 201, first.text
    correlation_id = first.headers["X-Correlation-ID"]
    assert ULID.fullmatch(correlation_id)
    body = first.json()
    assert body["meta"] == {"correlation_id": correlation_id}
    order_id = body["data"]["id"]

    again = post(web, {"item": "mug"}, key, ADA)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.content == first.content
    refused = post(web, {"item": "plate"}, key, ADA)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "idempotency_key_reused"
    graces = post(web, {"item": "mug"}, key, GRACE)
    assert graces.status_code == 201
    assert "Idempotent-Replayed" not in graces.headers
    assert graces.json()["data"]["id"] != order_id
    rows = running.project.query(
        "SELECT username, count(*) FROM orders_order JOIN auth_user ON auth_user.id = customer_id "
        "WHERE item = 'mug' GROUP BY username ORDER BY username"
    )
    assert rows == [("ada", 1), ("grace", 1)], "one row per customer for one key, however often retried"

    # The task the view published ran in the request's transaction; Celery's own lines say so too.
    if running.variant == "plain":

        def record(message_part: str) -> dict[str, Any] | None:
            for line in running.worker_lines():
                if line.startswith("{") and message_part in line:
                    parsed = json.loads(line)
                    if parsed["correlation_id"] == correlation_id:
                        return parsed
            return None

        confirmed = wait_until(
            lambda: record(f"confirming order {order_id}"), timeout=60, what="the task's line"
        )
        assert confirmed["logger"] == "orders.tasks"
        received = wait_until(lambda: record("received"), timeout=30, what="Celery's received line")
        assert received["task_id"] == confirmed["task_id"] != "-"
        assert received["task_name"] == "orders.tasks.confirm_order"
    else:

        def line(*parts: str) -> str | None:
            return next(
                (text for text in running.worker_lines() if all(part in text for part in parts)), None
            )

        wait_until(
            lambda: line(f"[{correlation_id}]", f"confirming order {order_id}"), timeout=60, what="task line"
        )
        assert line(f"[{correlation_id}]", "orders.tasks.confirm_order", "received")
        assert not [text for text in running.worker_lines() if text.startswith('{"timestamp"')], "one format"


def test_error_pages_show_the_id(running: Running) -> None:
    html = {"Accept": "text/html"}
    for path, status in (("/nope/", 404), ("/boom/", 500)):
        page = requests.get(f"{running.web}{path}", headers=html, timeout=30)
        assert page.status_code == status
        assert f'<code id="correlation-id">{page.headers["X-Correlation-ID"]}</code>' in page.text
        api = requests.get(f"{running.web}{path}", headers={"Accept": "application/json"}, timeout=30)
        assert api.json()["meta"]["correlation_id"] == api.headers["X-Correlation-ID"]
    technical = requests.get(f"{running.debug_web}/boom/", headers=html, timeout=30)
    assert technical.status_code == 500
    assert "Traceback" in technical.text
    assert f"<code>{technical.headers['X-Correlation-ID']}</code>" in technical.text
    assert ULID.fullmatch(requests.get(f"{running.debug_web}/nope/", timeout=30).headers["X-Correlation-ID"])


def test_the_browsable_api_shows_the_envelope(running: Running) -> None:
    page = requests.get(f"{running.web}/api/orders/", headers={"Accept": "text/html"}, auth=ADA, timeout=30)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.headers["X-Correlation-ID"] in page.text
    assert "&quot;data&quot;" in page.text


def test_the_admin_trace_page_shows_the_transaction(running: Running) -> None:
    created = post(running.web, {"item": "traced"}, str(uuid.uuid4()), ADA)
    correlation_id = created.headers["X-Correlation-ID"]
    admin = requests.Session()
    login = f"{running.web}/admin/login/"
    admin.get(login, timeout=30)
    signed_in = admin.post(
        login,
        data={
            "username": ADMIN[0],
            "password": ADMIN[1],
            "csrfmiddlewaretoken": admin.cookies["csrftoken"],
            "next": "/admin/",
        },
        timeout=30,
    )
    assert signed_in.url.endswith("/admin/"), signed_in.text[:500]
    page_url = f"{running.web}{reverse('admin:tracing_app_trace_detail', args=[correlation_id])}"

    def shows_the_task() -> bool:
        page = admin.get(page_url, timeout=30)
        return page.status_code == 200 and "orders.tasks.confirm_order" in page.text

    wait_until(shows_the_task, timeout=60, what="the trace page with the task")
    assert correlation_id in admin.get(page_url, timeout=30).text


def test_the_projects_own_exception_handler_is_wrapped_once(running: Running) -> None:
    refused = post(running.web, {}, str(uuid.uuid4()), ADA)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error["code"] == "invalid"
    if running.variant == "composed":
        assert error["details"] == {
            "ok": False,
            "status_code": 400,
            "errors": {"item": ["This field is required."]},
        }
    else:
        assert error["details"] == {"item": ["This field is required."]}


def test_cors_preflight_allows_both_headers_and_carries_the_id(running: Running) -> None:
    if running.variant != "composed":
        pytest.skip("django-cors-headers is added in the composed project only")
    preflight = requests.options(
        f"{running.web}/api/orders/",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, idempotency-key, x-correlation-id",
        },
        timeout=30,
    )
    assert preflight.status_code == 200
    allowed = {name.strip() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"idempotency-key", "x-correlation-id"} <= allowed
    assert ULID.fullmatch(preflight.headers["X-Correlation-ID"])
    created = post(running.web, {"item": "cors"}, str(uuid.uuid4()), ADA, Origin=ORIGIN)
    assert created.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {name.strip() for name in created.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"X-Correlation-ID", "Idempotent-Replayed", "Retry-After"} <= exposed
