"""The production server's gunicorn worker: ``gunicorn wsgi:app --worker-class server.GeventWorker``.

gunicorn's gevent worker, except that a response's head and the first bytes of its body leave in
one ``sendall``. gunicorn writes the head and the body with one call each, so a small answer (a
webhook's ``{"status": "queued", …}``, most API answers) went out as two TCP segments, each a
system call for the server and a wake-up and a read for the client. Responses without a body (a
204, a HEAD request) were one write already and stay one.

This module imports gunicorn and nothing of the app: gunicorn loads the worker class in its master
process, before the fork after which gevent patches each worker, and psycopg chooses how it waits
when it is first imported (see "Running in production" in the README on ``--preload``).
"""

from __future__ import annotations

from typing import Any

from gunicorn.http import wsgi
from gunicorn.workers import ggevent


class _HeadHeld:
    """A response's socket that keeps the first ``sendall`` (always the head: every way a
    response writes starts with ``send_headers``) and sends it together with the next one.

    Only the writes a response makes go through it: ``sendall`` and ``sendfile``; anything else
    is the socket's own.
    """

    __slots__ = ("_sock", "_head", "_started")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._head: bytes | None = None
        self._started = False  # the head has been written (or is held)

    def sendall(self, data: bytes) -> None:
        if not self._started:
            self._started = True
            self._head = bytes(data)
            return
        head, self._head = self._head, None
        self._sock.sendall(head + data if head is not None else data)

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        self.flush()  # the file goes straight from the kernel: the head must be out first
        return self._sock.sendfile(file, offset=offset, count=count)

    def flush(self) -> None:
        head, self._head = self._head, None
        if head is not None:
            self._sock.sendall(head)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class OneWriteResponse(wsgi.Response):
    """gunicorn's HTTP/1.x response, writing its head with the body's first bytes."""

    def __init__(self, req: Any, sock: Any, cfg: Any) -> None:
        super().__init__(req, _HeadHeld(sock), cfg)

    def send_headers(self) -> None:
        super().send_headers()
        if self.upgrade:  # the connection changes protocol: whoever takes it over writes next
            self.sock.flush()

    def close(self) -> None:
        super().close()  # a chunked body's last chunk still goes with a held head
        self.sock.flush()


class GeventWorker(ggevent.GeventWorker):
    """gunicorn's ``gevent`` worker, answering with ``OneWriteResponse``."""

    def init_process(self) -> None:
        # gunicorn builds every HTTP/1.x response with ``wsgi.create``, which takes the module's
        # ``Response`` unless a protocol passes its own (HTTP/2 does). Set in the worker, after
        # the fork: the master serves nothing.
        wsgi.Response = OneWriteResponse
        super().init_process()
