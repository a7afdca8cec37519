"""Concrete model fields and their columns, for the SQL the trace and idempotency stores write by hand."""

from __future__ import annotations

from typing import Any, cast

from django.db.models import Field, Model


def concrete_field(model: type[Model], name: str) -> Field[Any, Any]:
    """``model``'s field ``name`` (``"pk"`` for its primary key), which must be a concrete field."""
    # get_field() may also return reverse relations; the stores only ever name their own columns.
    return cast("Field[Any, Any]", model._meta.pk if name == "pk" else model._meta.get_field(name))


def column(model: type[Model], name: str) -> str:
    """The database column of ``model``'s concrete field ``name`` (``"pk"`` for its primary key)."""
    found = concrete_field(model, name).column
    # Only fields that are not concrete (reverse relations, generic keys) have no column.
    assert found is not None, name
    return found
