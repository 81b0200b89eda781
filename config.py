"""Configuration classes: every value comes from the environment, with safe local defaults.

Pick a class with ``REBOUND_CONFIG`` (development, testing, production) or pass one to
``create_app``. Production refuses to start without its secrets.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:  # a typo in the environment should stop start-up, not be ignored
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = (os.environ.get(name) or default).strip().lower()
    if raw not in choices:  # a typo must not silently change where work happens
        raise RuntimeError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


INBOUND_PROCESSING_MODES = ("inline", "worker")


def normalize_database_url(url: str) -> str:
    """Use the psycopg 3 driver for plain ``postgres://`` and ``postgresql://`` URLs."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class Config:
    """Values shared by every environment."""

    ENV_NAME = "base"
    SECRET_KEY = os.environ.get("SECRET_KEY", "")
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'rebound.db'}")
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    # Fernet key for secrets stored at rest (integration credentials).
    REBOUND_ENCRYPTION_KEY = os.environ.get("REBOUND_ENCRYPTION_KEY", "")
    # Largest request body accepted anywhere; webhooks and API alike.
    MAX_CONTENT_LENGTH = _env_int("REBOUND_MAX_BODY_BYTES", 1024 * 1024)
    # Largest webhook body (Zendesk caps its payloads at 256 KB; conversation dumps run larger).
    REBOUND_WEBHOOK_MAX_BYTES = _env_int("REBOUND_WEBHOOK_MAX_BYTES", 1024 * 1024)
    REBOUND_INBOUND_MAX_ATTEMPTS = _env_int("REBOUND_INBOUND_MAX_ATTEMPTS", 8)
    # A received event not processed after this long was interrupted; the worker takes it over.
    REBOUND_INBOUND_STALE_SECONDS = _env_int("REBOUND_INBOUND_STALE_SECONDS", 60)
    # Whether Rebound may call private, loopback and link-local addresses (local helpdesks, tests).
    REBOUND_ALLOW_PRIVATE_URLS = _env_bool("REBOUND_ALLOW_PRIVATE_URLS", False)
    # Where helpdesks reach this server; used to print webhook URLs.
    REBOUND_PUBLIC_URL = os.environ.get("REBOUND_PUBLIC_URL", "http://127.0.0.1:5000")
    REBOUND_CASE_NUMBER_PREFIX = os.environ.get("REBOUND_CASE_NUMBER_PREFIX", "RMA-")
    REBOUND_CASE_NUMBER_START = _env_int("REBOUND_CASE_NUMBER_START", 10001)
    REBOUND_PAGE_SIZE_MAX = _env_int("REBOUND_PAGE_SIZE_MAX", 200)
    # Days before an unanswered info request / an unused label expires the case.
    REBOUND_CUSTOMER_SILENCE_DAYS = _env_int("REBOUND_CUSTOMER_SILENCE_DAYS", 14)
    REBOUND_LABEL_EXPIRY_DAYS = _env_int("REBOUND_LABEL_EXPIRY_DAYS", 28)
    REBOUND_WORKER_INTERVAL_SECONDS = _env_int("REBOUND_WORKER_INTERVAL_SECONDS", 60)
    REBOUND_INBOUND_RETRY_INTERVAL_SECONDS = _env_int("REBOUND_INBOUND_RETRY_INTERVAL_SECONDS", 15)
    # Where a verified webhook is processed once committed: "inline" (in the request, right after the
    # commit: the case appears at once) or "worker" (the request only verifies and records; `flask worker`
    # processes new events within about REBOUND_INBOUND_POLL_SECONDS). Production uses "worker".
    REBOUND_INBOUND_PROCESSING = _env_choice("REBOUND_INBOUND_PROCESSING", "inline", INBOUND_PROCESSING_MODES)
    REBOUND_INBOUND_POLL_SECONDS = _env_int("REBOUND_INBOUND_POLL_SECONDS", 1)
    # Group commit of the inbox (PostgreSQL): under load, how long a web process's writer waits after a
    # batch's first delivery for the next ones (milliseconds). 0 only lets the requests that are ready
    # to run go first, which is what the gevent server of "Running in production" wants.
    REBOUND_INBOX_LINGER_MS = _env_int("REBOUND_INBOX_LINGER_MS", 0)
    # The outbox: how often the worker delivers due messages, and when a message is given up (dead).
    REBOUND_OUTBOX_INTERVAL_SECONDS = _env_int("REBOUND_OUTBOX_INTERVAL_SECONDS", 2)
    REBOUND_OUTBOX_MAX_ATTEMPTS = _env_int("REBOUND_OUTBOX_MAX_ATTEMPTS", 10)
    REBOUND_OUTBOX_MAX_AGE_SECONDS = _env_int("REBOUND_OUTBOX_MAX_AGE_SECONDS", 2 * 24 * 3600)
    # How long a claimed message is a worker's: one that dies mid-send leaves it to others after this.
    # Longer than a batch's slowest deliveries, or a live worker's message is sent twice.
    REBOUND_OUTBOX_LEASE_SECONDS = _env_int("REBOUND_OUTBOX_LEASE_SECONDS", 60)
    # Email: where raw mail and attachments are stored (content-addressed), the largest mail accepted,
    # and the key reply tokens (returns+<token>@…) are signed with (derived from SECRET_KEY if unset).
    REBOUND_ATTACHMENT_DIR = os.environ.get("REBOUND_ATTACHMENT_DIR", str(INSTANCE_DIR / "attachments"))
    REBOUND_MAIL_MAX_BYTES = _env_int("REBOUND_MAIL_MAX_BYTES", 25 * 1024 * 1024)
    # How often `flask worker` reads new mail from IMAP mailbox integrations.
    REBOUND_MAIL_POLL_SECONDS = _env_int("REBOUND_MAIL_POLL_SECONDS", 30)
    REBOUND_REPLY_TOKEN_KEY = os.environ.get("REBOUND_REPLY_TOKEN_KEY", "")
    # Outbound mail: automatic mail (acknowledgements, status mails) to one recipient about one case
    # is capped per hour and per day (RFC 3834: don't keep answering the same sender); over the cap it
    # is not sent and the case's timeline says why. An agent's own replies are never capped.
    REBOUND_MAIL_AUTO_PER_HOUR = _env_int("REBOUND_MAIL_AUTO_PER_HOUR", 5)
    REBOUND_MAIL_AUTO_PER_DAY = _env_int("REBOUND_MAIL_AUTO_PER_DAY", 20)
    # A CA file to trust for SMTP servers with their own certificate (local testing); empty: the system's CAs.
    REBOUND_SMTP_CA_FILE = os.environ.get("REBOUND_SMTP_CA_FILE", "")
    # The agent panel's own session token (issued after the helpdesk-authenticated first load).
    REBOUND_PANEL_TOKEN_SECONDS = _env_int("REBOUND_PANEL_TOKEN_SECONDS", 30 * 60)
    # The demo helpdesk at / (a stand-in helpdesk for the demo tenant, with buttons that simulate
    # customers): on in development, off unless asked for elsewhere.
    REBOUND_DEMO_HELPDESK = _env_bool("REBOUND_DEMO_HELPDESK", False)

    @classmethod
    def runtime_overrides(cls) -> dict[str, object]:
        """Values read from the environment when the app is created, not when this module is imported.

        :raise RuntimeError: a required setting is missing (production).
        """
        return {}


class DevelopmentConfig(Config):
    """Local development: embedded SQLite under ``instance/``, throwaway secrets."""

    ENV_NAME = "development"
    REBOUND_ALLOW_PRIVATE_URLS = _env_bool("REBOUND_ALLOW_PRIVATE_URLS", True)
    REBOUND_DEMO_HELPDESK = _env_bool("REBOUND_DEMO_HELPDESK", True)
    SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-not-secret")
    # A fixed development key so `make run` works with no setup; never used in production.
    REBOUND_ENCRYPTION_KEY = os.environ.get(
        "REBOUND_ENCRYPTION_KEY", "ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE="
    )


class TestingConfig(DevelopmentConfig):
    """The test suite: database from ``REBOUND_TEST_DATABASE_URL`` (the conftest sets it)."""

    ENV_NAME = "testing"
    TESTING = True
    SQLALCHEMY_DATABASE_URI = normalize_database_url(
        os.environ.get("REBOUND_TEST_DATABASE_URL", "sqlite://")
    )
    # The tests expect a webhook's case at once; worker mode is tested by setting it per test.
    REBOUND_INBOUND_PROCESSING = "inline"


class ProductionConfig(Config):
    """Production: every secret must come from the environment."""

    ENV_NAME = "production"
    REQUIRED = ("SECRET_KEY", "DATABASE_URL", "REBOUND_ENCRYPTION_KEY")
    # Web nodes only verify and record; workers process (keeps webhook latency flat under load).
    REBOUND_INBOUND_PROCESSING = _env_choice("REBOUND_INBOUND_PROCESSING", "worker", INBOUND_PROCESSING_MODES)

    @classmethod
    def runtime_overrides(cls) -> dict[str, object]:
        missing = [name for name in cls.REQUIRED if not os.environ.get(name)]
        if missing:
            raise RuntimeError(
                "Production configuration is missing required environment variables: "
                + ", ".join(missing)
            )
        if len(os.environ["SECRET_KEY"]) < 32:
            raise RuntimeError("SECRET_KEY must be at least 32 characters in production.")
        return {
            "SECRET_KEY": os.environ["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": normalize_database_url(os.environ["DATABASE_URL"]),
            "REBOUND_ENCRYPTION_KEY": os.environ["REBOUND_ENCRYPTION_KEY"],
        }


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_from_env() -> type[Config]:
    """The config class named by ``REBOUND_CONFIG`` (default: development)."""
    name = os.environ.get("REBOUND_CONFIG", "development").strip().lower()
    try:
        return CONFIGS[name]
    except KeyError:
        raise RuntimeError(
            f"REBOUND_CONFIG={name!r} is not one of {', '.join(sorted(CONFIGS))}"
        ) from None
