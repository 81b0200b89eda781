"""Helpers shared by the benchmarks: the bench database, gunicorn with the production
configuration, and a record of the machine a run was measured on.

Imported by ``bench/api.py`` and ``bench/ingest.py`` (run from the repository root, which
both put on ``sys.path``).
"""

from __future__ import annotations

import http.client
import os
import platform
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
VENV_BIN = Path(sys.executable).parent


# ---- database --------------------------------------------------------------------------------

def libpq_url(database_url: str, database: str | None = None) -> str:
    """A psycopg (libpq) connection string for a SQLAlchemy URL, optionally for another database."""
    url = make_url(database_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


def database_name(database_url: str) -> str:
    name = make_url(database_url).database
    if not name:
        raise SystemExit(f"--database-url has no database name: {database_url}")
    return name


def ensure_database(database_url: str, *, recreate: bool = False) -> None:
    """Create the database if missing (``recreate``: drop it first; only for a database named *bench*)."""
    name = database_name(database_url)
    with psycopg.connect(libpq_url(database_url, "postgres"), autocommit=True) as admin:
        if recreate:
            if "bench" not in name:
                raise SystemExit(f"Refusing to drop database {name!r}: its name does not contain 'bench'.")
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# ---- server ----------------------------------------------------------------------------------

# README "Running in production", used when the README's command cannot be read.
README_GUNICORN_FALLBACK = ("wsgi:app", "--workers", "2", "--worker-class", "server.GeventWorker",
                            "--worker-connections", "1000",
                            "--bind", "0.0.0.0:8000", "--access-logfile", "-")


def readme_gunicorn_args() -> tuple[list[str], str]:
    """The gunicorn options of the README's "Running in production" command, without the app and
    without ``--bind``/``-b`` (a bench binds a free local port); and the command as written there.

    Read from the README on every run, so the bench follows the README when its settings change.
    """
    command: list[str] = list(README_GUNICORN_FALLBACK)
    try:
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        section = text.split("## Running in production", 1)[1].split("\n## ", 1)[0]
        for line in section.splitlines():
            line = line.split("#", 1)[0].strip()
            if "gunicorn" in line:
                words = shlex.split(line)
                command = words[next(i for i, w in enumerate(words) if w.endswith("gunicorn")) + 1:]
                break
    except (OSError, IndexError, StopIteration, ValueError):
        pass
    written = "gunicorn " + " ".join(command)
    options, skip = [], False
    for word in command[1:]:  # command[0] is the app, e.g. wsgi:app
        if skip:
            skip = False
        elif word in ("--bind", "-b"):
            skip = True
        elif not re.match(r"^(--bind=|-b\S)", word):
            options.append(word)
    return options, written


def production_env(database_url: str, encryption_key: str | None = None) -> dict[str, str]:
    """The environment of a production server: REBOUND_CONFIG=production and its three secrets.

    ``encryption_key`` must be the Fernet key the bench data was encrypted with, if any.
    """
    from cryptography.fernet import Fernet

    return {
        **os.environ,
        "REBOUND_CONFIG": "production",
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(48),
        "REBOUND_ENCRYPTION_KEY": encryption_key or Fernet.generate_key().decode(),
        "FLASK_APP": "wsgi.py",
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """gunicorn serving ``app`` with ``options`` in its own process group; ``stop`` always cleans up."""

    def __init__(self, app: str, options: Sequence[str], env: dict[str, str], log_path: Path) -> None:
        self.app = app
        self.options = list(options)
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        return [str(VENV_BIN / "gunicorn"), self.app, *self.options, "--bind", f"127.0.0.1:{self.port}"]

    @property
    def display(self) -> str:
        return " ".join(["gunicorn", *self.command[1:]])

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def worker_pids(self) -> list[int]:
        """The master's children (the workers), from /proc."""
        if self.process is None:
            return []
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in children.split()]

    def start(self, timeout: float = 60.0) -> None:
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer /healthz within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group we created: master and workers only
            process.wait(timeout=5)


# ---- records ---------------------------------------------------------------------------------

def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
