"""Opening a database from an SQLAlchemy URL, with errors an operator can act on.

The password never leaves this module in clear. URLs are masked by parsing
them (:func:`redact`): the password and every query parameter that names a
secret (``?password=``, ``?passwd=``, ...) become ``***``; a URL that does not
parse is not shown at all. Every secret a parsed URL holds is remembered, in
every spelling (as given, percent-encoded, decoded), and :func:`scrub` removes
them from any free text (driver errors) before it is shown.
"""

from __future__ import annotations

import datetime
import re
from urllib.parse import quote, quote_plus, unquote

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from vifdoctor.errors import VifdoctorError

_PASSWORD_IN_TEXT = re.compile(r"(://[^:/@\s]+:)[^@\s]+@")
# Query parameters whose value is a secret (keys, matched by name).
_SECRET_PARAM = re.compile(r"pass|pwd|secret|token|key|cred|auth", re.IGNORECASE)
_MASK = "***"
_KNOWN_SECRETS: set[str] = set()
_MIN_SECRET = 3  # shorter values are too likely to be ordinary text to be masked in it


def remember_secret(value: str | None) -> None:
    """Mask ``value`` wherever :func:`scrub` sees it, in each way a URL may spell it."""
    if not value or len(value) < _MIN_SECRET:
        return
    for form in (value, quote(value, safe=""), quote_plus(value, safe=""), unquote(value)):
        if len(form) >= _MIN_SECRET:
            _KNOWN_SECRETS.add(form)


def _secret_params(url: URL) -> list[str]:
    return [k for k in url.query if _SECRET_PARAM.search(k)]


def _remember(url: URL) -> None:
    remember_secret(url.password if url.password is None else str(url.password))
    for key in _secret_params(url):
        value = url.query[key]
        for v in (value,) if isinstance(value, str) else value:
            remember_secret(v)


def _scheme(text: str) -> str:
    match = re.match(r"\s*([A-Za-z][A-Za-z0-9+.]*)://", text)
    return match.group(1) if match else ""


def parse_url(text: str) -> URL:
    """Parse a URL; it is never echoed when it does not parse (its password may be anywhere)."""
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError, TypeError):  # ValueError: e.g. a port not a number
        scheme = _scheme(text)
        shown = f"{scheme}://{_MASK}" if scheme else "(not shown)"
        raise VifdoctorError(
            f"not a database URL: {shown} does not parse (expected e.g. "
            "mysql+pymysql://user:password@host/neutron or sqlite:///path)"
        ) from None
    if _ambiguous(url, text):
        scheme = _scheme(text)
        raise VifdoctorError(
            f"not a database URL: {scheme}://{_MASK} has an '@' in its host part: a password "
            "holding '@' (or ':', '/', '?', '#') must be percent-encoded (%40 for '@')"
        )
    _remember(url)
    return url


def _ambiguous(url: URL, text: str) -> bool:
    """The password held an unencoded '@' and the parse cut it there.

    The '@' shows in the host, or (when '?' or '#' followed it in the password) in
    the query: a URL written as documented holds one '@' at most, so a second one
    means the user, password and host cannot be told apart, and none is shown.
    """
    return "@" in (url.host or "") or text.count("@") > 1


def redact(url: URL | str) -> str:
    """The URL as it may be shown: password and secret query values replaced by ***."""
    text = url if isinstance(url, str) else ""
    if isinstance(url, str):
        try:
            url = make_url(text)
        except (ArgumentError, ValueError, TypeError):
            scheme = _scheme(text)
            return f"{scheme}://{_MASK}" if scheme else _MASK
    if _ambiguous(url, text):
        return f"{url.drivername}://{_MASK}"
    _remember(url)
    secret = _secret_params(url)
    if secret:
        url = url.update_query_dict({k: _MASK for k in secret})
    return url.render_as_string(hide_password=True).replace("=%2A%2A%2A", "=" + _MASK)


def scrub(text: str) -> str:
    """Free text without any password seen in a URL (and none that looks like one)."""
    text = str(text)
    for secret in sorted(_KNOWN_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, _MASK)
    return _PASSWORD_IN_TEXT.sub(r"\1***@", text)


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
    _check_charset(url, what)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except SQLAlchemyError as exc:
        engine.dispose()
        raise VifdoctorError(f"{what}: cannot connect to {redact(url)}: {db_error(exc)}") from None
    except (TypeError, ValueError, AttributeError, LookupError) as exc:
        # The driver choked on the URL's query options (pymysql: an unknown keyword).
        engine.dispose()
        options = ", ".join(sorted(url.query)) or "none"
        raise VifdoctorError(
            f"{what}: the driver refused the URL's options ({options}) in {redact(url)}: "
            f"{scrub(str(exc))[:200]}"
        ) from None
    return engine


def _check_charset(url: URL, what: str) -> None:
    """pymysql fails on an unknown charset with an AttributeError: say what is wrong."""
    charset = url.query.get("charset")
    if not isinstance(charset, str) or url.get_backend_name() not in ("mysql", "mariadb"):
        return
    try:
        from pymysql.charset import charset_by_name
    except ImportError:  # pragma: no cover - another MySQL driver checks it itself
        return
    if charset_by_name(charset) is None:
        raise VifdoctorError(
            f"{what}: unknown MySQL charset {charset!r} in {redact(url)} (e.g. charset=utf8mb4)"
        )


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


def column_text(value: str | bytes | bytearray | memoryview | None) -> str | None:
    """A text column's value as str, also where the column is a BLOB (bytes from the driver).

    Bytes that are not UTF-8 keep every byte as a lone surrogate (``surrogateescape``):
    such text is never valid JSON, so the row is judged malformed and never written,
    and :func:`column_bytes` gives the exact bytes back.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return value


def column_bytes(value: str) -> bytes:
    """The exact bytes :func:`column_text` read."""
    return value.encode("utf-8", "surrogateescape")


def is_binary(column: sa.ColumnElement) -> bool:
    """Whether the driver hands this column's values over as bytes (BLOB, BYTEA, ...)."""
    return (
        isinstance(column.type, sa.LargeBinary)
        or getattr(column.type, "_type_affinity", None) is sa.LargeBinary
    )
