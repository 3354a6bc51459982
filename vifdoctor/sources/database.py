"""Opening a database from an SQLAlchemy URL, with errors an operator can act on.

The password never leaves this module in clear: every URL shown anywhere is
:func:`redact`-ed, and driver errors are reduced to their message with the URL
stripped.
"""

from __future__ import annotations

import datetime
import re

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from vifdoctor.errors import VifdoctorError

_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")


def parse_url(text: str) -> URL:
    try:
        return make_url(text.strip())
    except (ArgumentError, ValueError):  # ValueError: e.g. a port that is not a number
        raise VifdoctorError(
            f"not a database URL: {scrub(text)!r} (expected e.g. "
            "mysql+pymysql://user:password@host/neutron or sqlite:///path)"
        ) from None


def redact(url: URL | str) -> str:
    """The URL as it may be shown: password replaced by ***."""
    if isinstance(url, str):
        text = url
        try:
            url = make_url(text)
        except ArgumentError:
            return scrub(text)
    return url.render_as_string(hide_password=True)


def scrub(text: str) -> str:
    """Remove anything that looks like a password inside a URL from free text."""
    return _PASSWORD_IN_TEXT.sub(r"\1***@", str(text))


def _default_driver(url: URL) -> URL:
    """A bare ``postgresql://`` (as neutron.conf writes it) with whichever driver is installed.

    SQLAlchemy 2.1 maps it to psycopg 3; OpenStack deployments mostly ship psycopg2.
    """
    if url.drivername != "postgresql":
        return url
    import importlib.util

    for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return url.set(drivername=driver)
    return url


def connect(url_text: str, *, what: str = "database") -> Engine:
    """An engine for ``url_text``, checked with one round trip."""
    url = _default_driver(parse_url(url_text))
    if url.get_backend_name() == "sqlite":
        path = url.database
        if not path or path == ":memory:":
            raise VifdoctorError(f"{what}: an in-memory SQLite database holds no Neutron data")
        import os

        if not os.path.exists(path):
            raise VifdoctorError(f"{what}: SQLite file {path} does not exist")
    try:
        engine = sa.create_engine(url, pool_pre_ping=False)
    except NoSuchModuleError:
        raise VifdoctorError(
            f"{what}: no SQLAlchemy dialect for {url.drivername!r} in {redact(url)}"
        ) from None
    except ImportError as exc:
        hint = " (pip install 'vifdoctor[postgresql]')" if "psycopg" in str(exc) else ""
        raise VifdoctorError(f"{what}: database driver missing: {exc}{hint}") from None
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise VifdoctorError(f"{what}: cannot connect to {redact(url)}: {db_error(exc)}") from None
    return engine


def db_error(exc: BaseException) -> str:
    """A driver error as one short line, without SQL, parameters or passwords."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        text = str(exc.orig)
    else:
        text = str(exc).split("\n", 1)[0]
    text = re.sub(r"\s*\(Background on this error at:.*", "", text)
    return scrub(" ".join(text.split()))[:300]


def utc_now(conn: Connection) -> datetime.datetime:
    """The database's own clock in UTC, naive, as Neutron stores heartbeats."""
    dialect = conn.dialect.name
    if dialect in ("mysql", "mariadb"):
        query = "SELECT UTC_TIMESTAMP()"
    elif dialect == "postgresql":
        query = "SELECT (now() AT TIME ZONE 'UTC')"
    elif dialect == "sqlite":
        query = "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')"
    else:
        query = "SELECT CURRENT_TIMESTAMP"
    value = conn.execute(sa.text(query)).scalar()
    if value is None:
        raise VifdoctorError(f"the {dialect} server returned no current time")
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    return value


def bytewise(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """An ORDER BY key that sorts as Python sorts str (by code point), not by collation.

    Lets two databases' streams be merge-joined in Python.
    """
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects import mysql

        return sa.cast(column, mysql.BINARY())
    if dialect == "postgresql":
        return column.collate("C")
    return column  # SQLite compares bytes
