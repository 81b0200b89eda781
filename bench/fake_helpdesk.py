"""A fast stand-in for a helpdesk's REST API, for ``bench/dispatch.py``: one asyncio process.

Every request gets ``200`` with a small Zendesk-shaped JSON body over HTTP/1.1 keep-alive, and is
counted by its ``X-Rebound-Idempotency-Key`` (so the bench can tell lost and doubled deliveries).
It reads only what it needs (request line, headers, ``Content-Length`` body), so one core serves
tens of thousands of requests a second: far more than the clients it is measured with.

Control endpoints (not counted): ``GET /__stats`` → ``{"requests", "distinct", "duplicates",
"cpu_seconds"}``; ``POST /__reset`` → forget the counts.

Run: ``.venv/bin/python bench/fake_helpdesk.py --port 8089`` (prints ``listening <port>``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder would come first on sys.path, and bench/email.py would hide
# the standard library's email package: the repository root goes first instead, bench/ not at all.
sys.path[:] = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import asyncio
import json
import time
from collections import Counter

BODY = b'{"ticket": {"id": 4242}, "audit": {"events": [{"id": 1, "type": "Comment"}]}}'
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
KEY_HEADER = b"x-rebound-idempotency-key"


class Counts:
    def __init__(self) -> None:
        self.keys: Counter[bytes] = Counter()
        self.requests = 0
        self.cpu_at_reset = time.process_time()

    def stats(self) -> dict[str, float]:
        return {"requests": self.requests, "distinct": len(self.keys),
                "duplicates": sum(n - 1 for n in self.keys.values() if n > 1),
                "cpu_seconds": time.process_time() - self.cpu_at_reset}


COUNTS = Counts()


class Handler(asyncio.Protocol):
    """One connection: parse pipelined HTTP/1.1 requests out of the byte stream, answer each."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        global COUNTS
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            lines = self.buffer[:end].split(b"\r\n")
            length, key = 0, b""
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip() or 0)
                elif name == KEY_HEADER:
                    key = value.strip()
            if len(self.buffer) < end + 4 + length:
                break  # the body has not all arrived yet
            self.buffer = self.buffer[end + 4 + length:]
            method, path = lines[0].split(b" ", 2)[:2]
            if path == b"/__stats":
                body = json.dumps(COUNTS.stats()).encode()
            elif path == b"/__reset":
                COUNTS = Counts()
                body = b"{}"
            else:
                COUNTS.requests += 1
                COUNTS.keys[key] += 1
                body = BODY
            out.append(HEAD % len(body) + body)
        if out:
            self.transport.write(b"".join(out))


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, "127.0.0.1", port, backlog=1024)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
