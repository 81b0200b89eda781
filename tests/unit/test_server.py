"""The production worker's response (``server.OneWriteResponse``): the head leaves with the body's
first bytes, and nothing is lost, reordered or held back past the end of a response."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

from gunicorn.config import Config

from server import OneWriteResponse

ROOT = Path(__file__).resolve().parents[2]


class RecordingSocket:
    """Records each write a response makes, in order."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, bytes]] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(("sendall", bytes(data)))

    def sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        file.seek(offset)
        data = file.read(count)
        self.writes.append(("sendfile", data))
        return len(data)

    @property
    def wire(self) -> bytes:
        return b"".join(data for _, data in self.writes)


class FakeRequest:
    def __init__(self, method: str = "POST", version: tuple[int, int] = (1, 1)) -> None:
        self.method, self.version = method, version

    def should_close(self) -> bool:
        return False


def respond(status: str, headers: list[tuple[str, str]], body: list[bytes], method: str = "POST",
            ) -> tuple[RecordingSocket, OneWriteResponse]:
    """Run a response the way gunicorn's worker does: start, write each item, close."""
    sock = RecordingSocket()
    response = OneWriteResponse(FakeRequest(method), sock, Config())
    write = response.start_response(status, headers)
    for item in body:
        write(item)
    response.close()
    return sock, response


def test_a_small_answer_leaves_in_one_write():
    body = b'{"status": "queued", "event_id": 7}'
    sock, _ = respond("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))], [body])
    assert len(sock.writes) == 1
    head, _, sent_body = sock.wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and f"Content-Length: {len(body)}".encode() in head
    assert sent_body == body


def test_an_answer_without_a_body_is_one_write_of_its_head():
    sock, _ = respond("204 NO CONTENT", [], [b""])
    assert [kind for kind, _ in sock.writes] == ["sendall"]
    assert sock.wire.startswith(b"HTTP/1.1 204 NO CONTENT\r\n") and sock.wire.endswith(b"\r\n\r\n")


def test_a_head_request_sends_the_head_only():
    sock, _ = respond("200 OK", [("Content-Length", "5")], [b"hello"], method="HEAD")
    assert len(sock.writes) == 1 and sock.wire.endswith(b"\r\n\r\n") and b"hello" not in sock.wire


def test_a_body_in_several_pieces_follows_its_head_in_order():
    sock, _ = respond("200 OK", [("Content-Length", "9")], [b"one", b"two", b"six"])
    assert len(sock.writes) == 3  # the head went with the first piece
    assert sock.wire.endswith(b"\r\n\r\nonetwosix")


def test_a_chunked_body_is_framed_and_ended():
    sock, response = respond("200 OK", [("Content-Type", "text/plain")], [b"abc", b"de"])
    assert response.chunked
    assert len(sock.writes) == 3  # head with the first chunk, the second chunk, the last chunk
    assert sock.wire.endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")


def test_an_empty_chunked_body_sends_head_and_last_chunk_together():
    sock, _ = respond("200 OK", [("Content-Type", "text/plain")], [])
    assert len(sock.writes) == 1
    assert b"Transfer-Encoding: chunked\r\n" in sock.wire and sock.wire.endswith(b"\r\n\r\n0\r\n\r\n")


class FileWrapper:
    """What ``wsgi.file_wrapper`` hands the server: a file, iterated in pieces when it cannot be sent whole."""

    def __init__(self, filelike: Any, pieces: tuple[bytes, ...] = ()) -> None:
        self.filelike, self.pieces = filelike, pieces

    def __iter__(self):
        return iter(self.pieces)


def _file_response(length: int) -> tuple[RecordingSocket, OneWriteResponse]:
    sock = RecordingSocket()
    response = OneWriteResponse(FakeRequest(), sock, Config())
    response.start_response("200 OK", [("Content-Length", str(length))])
    return sock, response


def test_a_file_sent_by_sendfile_comes_after_its_head():
    sock, response = _file_response(4)
    expected = Path(__file__).read_bytes()[:4]
    with open(__file__, "rb") as handle:  # a real file: sendfile needs a file descriptor
        response.write_file(FileWrapper(handle))
    response.close()
    assert [kind for kind, _ in sock.writes] == ["sendall", "sendfile"]
    assert sock.writes[0][1].endswith(b"\r\n\r\n") and sock.writes[1][1] == expected


def test_a_file_without_a_descriptor_is_written_like_any_body():
    sock, response = _file_response(6)
    response.write_file(FileWrapper(io.BytesIO(b"abcdef"), (b"abc", b"def")))
    response.close()
    assert len(sock.writes) == 2 and sock.wire.endswith(b"\r\n\r\nabcdef")


def test_loading_the_worker_class_imports_nothing_of_the_app_and_patches_nothing():
    """gunicorn imports the worker class in its master, before the fork: the app (and psycopg,
    which picks its way of waiting when imported) must load in the workers, after gevent patches them."""
    probe = ("import sys, server, gevent.monkey; "
             "print(sorted(m for m in ('app', 'psycopg', 'sqlalchemy', 'flask') if m in sys.modules), "
             "gevent.monkey.is_anything_patched())")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[] False"
