"""Python tracebacks, as stored in error events, split into frames for reading.

Stored tracebacks may be cut at the front (``...`` then the last 2000 characters), so parsing is
lenient: whatever is not a frame is kept as context, and a text with no frames gives no frames.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FRAME = re.compile(r'^  File "(?P<file>[^"]*)", line (?P<line>\d+), in (?P<function>.*)$')


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str
    code: str = ""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ParsedTraceback:
    exception: str
    frames: list[Frame]


def parse(text: str) -> ParsedTraceback:
    """The exception line and the frames (innermost last, as Python prints them) of ``text``."""
    frames: list[Frame] = []
    lines = text.splitlines()
    exception = ""
    pending: dict[str, str] | None = None
    for line in lines:
        match = _FRAME.match(line)
        if match:
            if pending is not None:
                frames.append(_frame(pending))
            pending = match.groupdict()
        elif pending is not None and line.startswith("    ") and "code" not in pending:
            pending["code"] = line.strip()
        elif line and not line.startswith(" "):
            if pending is not None:
                frames.append(_frame(pending))
                pending = None
            if not line.startswith("Traceback ") and not line.startswith("..."):
                exception = line
    if pending is not None:
        frames.append(_frame(pending))
    return ParsedTraceback(exception, frames)


def _frame(found: dict[str, str]) -> Frame:
    return Frame(found["file"], int(found["line"]), found["function"], found.get("code", ""))
