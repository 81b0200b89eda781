"""Extension singletons, unbound: the app factory calls ``init_app`` on each.

Also the declarative ``Base`` every model derives from, with a naming convention so that
Alembic gives constraints stable names, and the column types shared by all models.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, registry

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every database.

    SQLite keeps no zone, so values are normalised to UTC on the way in and marked UTC on the
    way out; PostgreSQL stores ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


# JSON documents: JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
# Money: exact decimals with two places; never floats.
Money = sa.Numeric(14, 2, asdecimal=True)


class Base(DeclarativeBase):
    """Declarative base: naming convention and the project's default column types."""

    # Flask-SQLAlchemy subclasses the base, so the type map goes on the registry itself.
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={
            datetime: UTCDateTime(),
            Decimal: Money,
            dict[str, Any]: JSONDocument,
            list[Any]: JSONDocument,
            str: sa.String(255),
        },
    )


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


# Objects stay readable after a commit: a service returns what it just wrote without the
# session reloading every attribute (one query per object) to serialise it.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
