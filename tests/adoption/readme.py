"""The README's "Add it to your project" snippets, then docs/install.md's, read at test time.

Each Python snippet's first line names where it goes: ``# proj/settings.py: at the end`` (appended),
``# proj/settings.py (text logs)`` (a labelled alternative), ``# proj/celery.py`` (a file of its own).
Shell snippets hold the commands to run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
INSTALL_PAGE = ROOT / "docs" / "install.md"
SECTION = "## Add it to your project"
_BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.S)
_TARGET = re.compile(r"# (?P<path>[\w./]+)(?::[^(]*| \((?P<label>[^)]+)\))?$")


@dataclass(frozen=True)
class Snippet:
    language: str
    path: str  # where a Python snippet goes; "" for shell
    label: str | None  # the alternative it belongs to, e.g. "text logs"; None for every project
    code: str


def snippets() -> list[Snippet]:
    """The README's section first: the variants on the install page build on its settings."""
    readme = README.read_text()
    start = readme.index(SECTION)
    end = readme.index("\n## ", start + len(SECTION))
    found = []
    for language, code in _BLOCK.findall(readme[start:end] + INSTALL_PAGE.read_text()):
        if language != "python":
            found.append(Snippet(language, "", None, code))
            continue
        target = _TARGET.match(code.splitlines()[0])
        if target is None:
            raise AssertionError(f"a README snippet does not say where it goes: {code.splitlines()[0]!r}")
        found.append(Snippet(language, target["path"], target["label"], code))
    return found


def commands(found: list[Snippet]) -> list[list[str]]:
    """The arguments of the ``python manage.py ...`` commands in the shell snippets, in order."""
    return [
        line.split("#")[0].split()[2:]
        for snippet in found
        if snippet.language == "sh"
        for line in snippet.code.splitlines()
        if line.startswith("python manage.py ")
    ]
