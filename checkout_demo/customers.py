"""The demo's customers and their API tokens.

``manage.py rundemo`` creates them and writes their tokens to ``VAR_DIR/customer-tokens.json`` (readable
by its owner only); ``manage.py checkout_demo`` reads that file and places each scenario's order as one of
them, so it can show that a customer never sees another's orders.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

CUSTOMERS = ("ada", "grace")
TOKENS_FILE = "customer-tokens.json"


def ensure_customers(var_dir: Path) -> dict[str, str]:
    """Create the demo customers (no password, no admin access) and their tokens; returns username ->
    token key, also written to ``var_dir``."""
    tokens = {}
    for username in CUSTOMERS:
        user, created = get_user_model().objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        tokens[username] = Token.objects.get_or_create(user=user)[0].key
    path = var_dir / TOKENS_FILE
    path.touch(mode=0o600)
    path.write_text(json.dumps(tokens, indent=2) + "\n")
    return tokens


def saved_tokens(path: Path) -> dict[str, str]:
    """The tokens ``ensure_customers`` wrote; empty when the file is missing or unreadable."""
    try:
        tokens = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(name): str(key) for name, key in tokens.items()} if isinstance(tokens, dict) else {}
