"""The side effect the idempotency tests count: one row per time an operation really ran."""

from django.db import models


class Effect(models.Model):
    label = models.CharField(max_length=200, db_index=True)
    note = models.CharField(max_length=200, blank=True)
