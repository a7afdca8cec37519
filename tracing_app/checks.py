"""Django system checks for tracing_app's configuration."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error | Warning]:
    return []
