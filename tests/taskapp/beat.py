"""``celery -A tests.taskapp.beat beat``: the demo app with one periodic task, every second."""

from settings.celery import app

app.conf.beat_schedule = {
    "record-every-second": {"task": "tests.taskapp.tasks.record", "schedule": 1.0, "args": ("beat",)},
}
