"""A throwaway Dovecot IMAP server per test process, from Debian's ``dovecot-imapd``.

``dovecot`` (session scope) installs the package if it is missing (``apt-get``, once per machine:
parallel xdist workers wait on a file lock), writes a minimal configuration into a temporary
directory — no system configuration is read (``dovecot -F -c <conf>``) — and runs it as the
current user on two free loopback ports: IMAP with STARTTLS, and IMAP over TLS, with a
self-signed certificate. One user, ``rebound`` / ``secret``, is in a passwd-file with a plain
password; mail is stored as Maildir under the temporary directory. Each xdist worker gets its
own server and ports; the server is stopped at the end of the session, and ``setpriv
--pdeathsig`` stops it too if the test process dies without cleaning up.

``imap_folder`` (function scope) creates a fresh folder for one test and deletes it afterwards,
so tests share the server but never each other's mail. Put messages in with ``append``.
"""

from __future__ import annotations

import fcntl
import getpass
import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from imapclient import IMAPClient

from tests.support.net import HOST, free_port, self_signed_certificate, wait_for_port

USERNAME = "rebound"
PASSWORD = "secret"
PACKAGE = "dovecot-imapd"
INSTALL_LOCK = Path(tempfile.gettempdir()) / "rebound-dovecot-install.lock"
INSTALL_FAILED = INSTALL_LOCK.with_suffix(".failed")
START_ATTEMPTS = 5  # another process may take a "free" port before Dovecot binds it
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Dovecot:
    """Where the test server listens and how to log in."""

    host: str
    port: int  # IMAP, plain or STARTTLS
    tls_port: int  # IMAP over TLS
    username: str
    password: str
    ca_file: str  # the server's self-signed certificate
    log_file: Path


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or next(
        (path for path in ("/usr/sbin/dovecot", "/usr/local/sbin/dovecot") if os.access(path, os.X_OK)), None
    )


def ensure_dovecot() -> str:
    """The path of the ``dovecot`` binary, installing ``dovecot-imapd`` with apt-get if needed.

    Skips the calling test (with the reason) when it isn't installed and can't be.
    """
    found = dovecot_binary()
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(f"Dovecot is not installed; install it with `apt-get install {PACKAGE}` (needs root)")
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers: the first installs, the others wait
        found = dovecot_binary()
        if found:
            return found
        if INSTALL_FAILED.exists() and time.time() - INSTALL_FAILED.stat().st_mtime < 3600:
            pytest.skip(INSTALL_FAILED.read_text())  # don't retry a failed install for every worker
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update"],
            ["apt-get", "install", "-y", "--no-install-recommends", PACKAGE],
        ):
            try:
                done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
                failure = None if done.returncode == 0 else (done.stderr or done.stdout).strip()[-500:]
            except (OSError, subprocess.TimeoutExpired) as exc:
                failure = str(exc)
            if failure is not None:
                reason = f"Dovecot is not installed and `{' '.join(command)}` failed: {failure}"
                INSTALL_FAILED.write_text(reason)
                pytest.skip(reason)
        INSTALL_FAILED.unlink(missing_ok=True)
    found = dovecot_binary()
    if not found:
        pytest.skip(f"`apt-get install {PACKAGE}` succeeded but no dovecot binary was found")
    return found


def write_config(root: Path, port: int, tls_port: int) -> Path:
    """A complete configuration for a server under ``root`` running as the current user."""
    user, group = getpass.getuser(), grp.getgrgid(os.getgid()).gr_name
    # Dovecot refuses root for its login processes and for mail access: as root, use nobody.
    login_user = user if os.getuid() != 0 else _unprivileged_user("dovenull", "nobody")
    mail_user = pwd.getpwuid(os.getuid()) if os.getuid() != 0 else pwd.getpwnam(_unprivileged_user("nobody"))
    uid, gid = mail_user.pw_uid, mail_user.pw_gid
    certificate = self_signed_certificate(root / "tls")
    (root / "passwd").write_text(f"{USERNAME}:{PASSWORD}\n")
    home = root / "home" / USERNAME
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, uid, gid)
    config = root / "dovecot.conf"
    config.write_text(f"""\
# Written by tests/support/dovecot.py for one test process; nothing else is read.
base_dir = {root}/run
state_dir = {root}/state
instance_name = rebound-test-{port}
log_path = {root}/dovecot.log
protocols = imap
listen = {HOST}
ssl = yes
ssl_cert = <{certificate.cert_file}
ssl_key = <{certificate.key_file}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
# Everything runs as whoever runs the tests, except (as root) logins and mail access.
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {HOST}
    port = {port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
""")
    return config


def _unprivileged_user(*names: str) -> str:
    for name in names:  # dovenull comes with Debian's dovecot-core, nobody with every system
        with suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError(f"Dovecot run as root needs one of these users: {', '.join(names)}")


def _alive(process: subprocess.Popen) -> bool:
    return process.poll() is None


def _start(binary: str, root: Path) -> tuple[subprocess.Popen, int, int]:
    problems = []
    for _attempt in range(START_ATTEMPTS):
        port, tls_port = free_port(), free_port()
        config = write_config(root, port, tls_port)
        command = [binary, "-F", "-c", str(config)]
        if shutil.which("setpriv"):  # the server dies with the test process, even on SIGKILL
            command = ["setpriv", "--pdeathsig", "TERM", "--", *command]
        output = open(root / "stdout.log", "ab")
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        output.close()
        if wait_for_port(port, START_TIMEOUT, lambda: _alive(process)) and wait_for_port(
            tls_port, START_TIMEOUT, lambda: _alive(process)
        ):
            return process, port, tls_port
        _stop(process)
        log = "".join(
            path.read_text(errors="replace")[-1500:] for path in (root / "stdout.log", root / "dovecot.log") if path.exists()
        )
        problems.append(log)
        if "Address already in use" not in log:
            break
    raise RuntimeError(f"Dovecot did not start:\n{problems[-1] if problems else ''}")


def _stop(process: subprocess.Popen) -> None:
    """Stop the master and every process it started (they share its process group)."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_TIMEOUT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:  # children may outlive the master for a moment
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextmanager
def running_dovecot(root: Path) -> Iterator[Dovecot]:
    """A started Dovecot under ``root``; stopped when the block ends, however it ends."""
    binary = ensure_dovecot()
    process, port, tls_port = _start(binary, root)
    try:
        yield Dovecot(
            host=HOST, port=port, tls_port=tls_port, username=USERNAME, password=PASSWORD,
            ca_file=str(root / "tls" / "cert.pem"), log_file=root / "dovecot.log",
        )
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    # Not tmp_path_factory: its paths can be long, and Dovecot's UNIX sockets under base_dir
    # must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="rebound-dovecot-"))
    root.chmod(0o755)  # the unprivileged login processes must reach the sockets in base_dir
    try:
        with running_dovecot(root) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def imap_connection(server: Dovecot, timeout: float = 10.0) -> Iterator[IMAPClient]:
    """A logged-in client for setting up and inspecting mail (not the code under test)."""
    client = IMAPClient(server.host, server.port, ssl=False, timeout=timeout)
    try:
        client.login(server.username, server.password)
        yield client
    finally:
        with suppress(Exception):
            client.logout()


def append(server: Dovecot, folder: str, message: bytes, flags: tuple[bytes, ...] = ()) -> None:
    """Put ``message`` into ``folder`` with IMAP APPEND."""
    with imap_connection(server) as client:
        client.append(folder, message, flags=flags)


@pytest.fixture()
def imap_folder(dovecot: Dovecot) -> Iterator[str]:
    """A new, empty folder for one test; deleted afterwards with everything under it."""
    folder = f"t{uuid.uuid4().hex[:12]}"
    with imap_connection(dovecot) as client:
        client.create_folder(folder)
    yield folder
    with imap_connection(dovecot) as client:
        for _flags, _delimiter, name in client.list_folders(folder + "*"):
            with suppress(Exception):
                client.delete_folder(name)
