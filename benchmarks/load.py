"""Bounded HTTP load against a loopback server: wrk when installed, else a small threaded Python client.

Both run for a fixed number of whole seconds (wrk's unit) with a fixed number of connections, so a slow
server gets fewer requests, never an unbounded queue. Only loopback URLs are accepted. With ``body`` the
requests are JSON POSTs; with ``unique_header`` every request carries that header with a value no other
request had (idempotency keys): ``unique_prefix`` followed by a counter.
"""

from __future__ import annotations

import http.client
import itertools
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "::1", "localhost")

# wrk's per-request hook: a POST with a fresh header value each time (prefix from the command line).
_WRK_SCRIPT = """
local counter = 0
local prefix = "bench"
function init(args) prefix = args[1] end
function request()
  counter = counter + 1
  local headers = {["Content-Type"] = "application/json"}
  if HEADER ~= "" then headers[HEADER] = prefix .. "-" .. counter end
  return wrk.format("POST", nil, headers, BODY)
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    failures: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def tool() -> str:
    return "wrk" if shutil.which("wrk") else "a threaded Python client"


def generate(
    url: str,
    seconds: int,
    connections: int,
    body: bytes | None = None,
    unique_header: str | None = None,
    unique_prefix: str = "",
) -> LoadResult:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        raise ValueError(f"load is only ever sent to loopback, not {host!r}")
    prefix = unique_prefix or secrets.token_hex(8)
    if shutil.which("wrk"):
        return _wrk(url, seconds, connections, body, unique_header, prefix)
    return _python_client(url, seconds, connections, body, unique_header, prefix)


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrk(
    url: str, seconds: int, connections: int, body: bytes | None, unique_header: str | None, prefix: str
) -> LoadResult:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", encoding="utf-8") as script:
        if body is not None:
            script.write(
                f"HEADER = {_lua_string(unique_header or '')}\nBODY = {_lua_string(body.decode())}\n"
            )
            script.write(_WRK_SCRIPT)
            script.flush()
            command[1:1] = ["-s", script.name]
            command += ["--", prefix]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    if finished.returncode != 0:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr or finished.stdout}")
    output = finished.stdout
    summary = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", output)
    if summary is None:
        raise RuntimeError(f"cannot read wrk's output:\n{output}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[summary.group(3)]
    failures = sum(
        int(n) for n in re.findall(r"(?:Non-2xx or 3xx responses:|connect|read|write|timeout) (\d+)", output)
    )
    return LoadResult(int(summary.group(1)), float(summary.group(2)) * scale, failures)


def _python_client(
    url: str, seconds: int, connections: int, body: bytes | None, unique_header: str | None, prefix: str
) -> LoadResult:
    parts = urlsplit(url)
    path = parts.path or "/"
    counts = [[0, 0] for _ in range(connections)]
    numbers = itertools.count()  # next() on a count is atomic under the GIL
    deadline = time.monotonic() + seconds

    def client(tally: list[int]) -> None:
        while time.monotonic() < deadline:
            headers = {}
            if body is not None:
                headers["Content-Type"] = "application/json"
            if unique_header:
                headers[unique_header] = f"{prefix}-{next(numbers)}"
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            try:
                connection.request("GET" if body is None else "POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                tally[0 if response.status < 400 else 1] += 1
            except OSError:
                tally[1] += 1
            finally:
                connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(tally,)) for tally in counts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return LoadResult(sum(c[0] + c[1] for c in counts), elapsed, sum(c[1] for c in counts))
