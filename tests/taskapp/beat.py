"""``celery -A tests.taskapp.beat beat``: the tests' app with one periodic task, every second."""

from tests.project.celery import app

app.conf.beat_schedule = {
    "record-every-second": {"task": "tests.taskapp.tasks.record", "schedule": 1.0, "args": ("beat",)},
}
