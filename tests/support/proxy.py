"""A TCP proxy between code under test and a real service, to simulate outages and slow links.

The machine's PostgreSQL, RabbitMQ and Redis are shared: a test never stops them. It points the process
under test at a proxy instead, then cuts the proxy ("the service went away") and restores it ("it is
back"). Every connection that was open at the cut is reset, as a crashed server or a failed-over
database would leave it.

API
---
``tcp_proxy(target_port, target_host="127.0.0.1", *, delay=0.0) -> Iterator[TcpProxy]``
    Context manager. Starts a proxy listening on a free port of 127.0.0.1 that forwards every accepted
    connection to ``target_host:target_port``; on exit closes it (every connection, the listening
    socket and its thread: nothing is left running).

``TcpProxy``
    ``.port``: where it listens. ``.url_for(url)``: ``url`` (a ``DATABASE_URL``, a broker URL) with its
    host and port replaced by the proxy's, user, password, path and query kept; a URL that names another
    port than the target's raises ``ValueError``. ``.connections``: proxied connections open now;
    ``.accepted``: connections proxied since the start; ``.refused``: connections reset because the
    proxy was cut.
    ``.cut()``: resets every proxied connection (both sides get an RST, as from a dead peer), and from
    then on resets each new connection right after accepting it, so clients fail at once instead of
    waiting for a timeout. Returns once every connection is closed. ``.restore()``: accept and forward
    again (connections cut stay dead: clients must reconnect). ``.delay``: seconds each chunk of bytes
    waits before it is forwarded, in both directions (a slow link); settable while running.
    ``.start()`` / ``.close()``: what the context manager does.

The proxy runs an asyncio loop in one daemon thread of its own; ``cut``/``restore``/``close`` may be
called from any thread and take effect before they return.

Example::

    def test_query_fails_while_the_database_is_away():
        url = "postgresql://postgres@127.0.0.1:5432/postgres"
        with tcp_proxy(5432) as proxy, psycopg.connect(proxy.url_for(url)) as conn:
            proxy.cut()
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")
            proxy.restore()
            assert psycopg.connect(proxy.url_for(url)).execute("SELECT 1").fetchone() == (1,)

    # A worker whose broker link can be cut, the test publishing around the proxy:
    with tcp_proxy(5672) as proxy, run_worker(proxy.url_for(rabbitmq_url), publish=False) as worker:
        ...
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

T = TypeVar("T")
_CHUNK = 65536
_CALL_TIMEOUT = 10.0
# SO_LINGER on with a zero timeout: close() sends an RST instead of a FIN, like a peer that died.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


class TcpProxy:
    """One listening socket forwarding to one target; see the module docstring."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1", *, delay: float = 0.0) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.delay = delay
        self.port = 0
        self.accepted = 0
        self.refused = 0
        self._cut = False
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def connections(self) -> int:
        """Proxied connections open now (each counts once, whatever its two sockets' states)."""
        return len(self._open) // 2

    def start(self) -> TcpProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._run, args=(self._loop,), name=f"tcp-proxy-{self.target_port}", daemon=True
        )
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._accept, "127.0.0.1", 0, backlog=512))
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url_for(self, url: str) -> str:
        """``url`` pointing at the proxy instead of the service."""
        parts = urlsplit(url)
        if parts.port is not None and parts.port != self.target_port:
            raise ValueError(f"{url!r} names port {parts.port}; this proxy forwards to {self.target_port}")
        userinfo, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{self.port}"))

    def cut(self) -> None:
        """Reset every proxied connection and every new one until ``restore()``."""
        self._call(self._reset_all(cut=True))

    def restore(self) -> None:
        """Forward new connections again."""
        self._call(self._set_cut(False))

    def close(self) -> None:
        """Stop listening, reset every connection and end the loop's thread."""
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(_CALL_TIMEOUT)
        self._loop = self._thread = None

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None, "the proxy is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(_CALL_TIMEOUT)

    async def _set_cut(self, value: bool) -> None:
        self._cut = value

    async def _reset_all(self, *, cut: bool) -> None:
        self._cut = cut
        for writer in list(self._open):
            _reset(writer)
        # Each connection's handler sees its sockets closed and ends; wait so callers find nothing open.
        if self._handlers:
            await asyncio.wait(list(self._handlers), timeout=_CALL_TIMEOUT)

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._reset_all(cut=True)
        await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._forward(client_reader, client)
        finally:
            self._handlers.discard(handler)

    async def _forward(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self._cut:
            self.refused += 1
            _reset(client)
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            _reset(client)
            return
        if self._cut:  # cut while the upstream connection was being opened
            self.refused += 1
            _reset(client)
            _reset(upstream)
            return
        self.accepted += 1
        pair = (client, upstream)
        self._open.update(pair)
        try:
            await asyncio.gather(
                self._copy(client_reader, upstream, client), self._copy(upstream_reader, client, upstream)
            )
        finally:
            self._open.difference_update(pair)
            for writer in pair:
                writer.close()

    async def _copy(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, source_writer: asyncio.StreamWriter
    ) -> None:
        """Forward one direction until end of stream (passed on as a half-close) or a reset."""
        try:
            while chunk := await source.read(_CHUNK):
                if self.delay:
                    await asyncio.sleep(self.delay)
                sink.write(chunk)
                await sink.drain()
            if sink.can_write_eof() and not sink.is_closing():
                sink.write_eof()
        except (OSError, RuntimeError):
            # One side failed: the other must not hang on a half-dead pair.
            _reset(sink)
            _reset(source_writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)
    writer.transport.abort()


@contextmanager
def tcp_proxy(target_port: int, target_host: str = "127.0.0.1", *, delay: float = 0.0) -> Iterator[TcpProxy]:
    """A running ``TcpProxy`` to ``target_host:target_port`` for the duration of the block."""
    proxy = TcpProxy(target_port, target_host, delay=delay).start()
    try:
        yield proxy
    finally:
        proxy.close()
