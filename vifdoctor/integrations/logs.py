"""Logging the way OpenStack's command-line tools do it (oslo.log's defaults, stdlib only).

``--debug`` logs DEBUG, ``--log-file PATH`` appends to a file (INFO, or DEBUG
with ``--debug``) through a ``WatchedFileHandler`` so logrotate can move it;
``--debug`` alone logs to stderr. The line format is oslo.log's
``logging_default_format_string`` for records without a request context, and the
chatty libraries get oslo.log's ``default_log_levels``. Without either flag
nothing changes: errors stay one line on stderr.

Every line passes through :func:`mask` before it is written: a password inside
a URL (``mysql+pymysql://user:PW@host``) becomes ``***``, and, where oslo.utils
is installed, everything its ``mask_password`` knows (``password=...``,
``"admin_pass": ...``, tokens).
"""

from __future__ import annotations

import logging
import logging.handlers

from vifdoctor.errors import VifdoctorError
from vifdoctor.sources.database import scrub

#: oslo.log's logging_default_format_string (no request context: "[-]").
FORMAT = "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
#: From oslo.log's default_log_levels: the libraries vifdoctor loads.
QUIET = {
    "sqlalchemy": logging.WARNING,
    "urllib3.connectionpool": logging.WARNING,
    "urllib3.util.retry": logging.WARNING,
    "stevedore": logging.WARNING,
    "keystoneauth": logging.WARNING,
    "iso8601": logging.WARNING,
}


def mask(text: str) -> str:
    """``text`` without passwords: URL credentials always, oslo.utils' patterns if present."""
    text = scrub(text)
    try:
        from oslo_utils.strutils import mask_password
    except ImportError:
        return text
    return mask_password(text)


class MaskingFormatter(logging.Formatter):
    """oslo.log's line format; the whole line (traceback included) masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask(super().format(record))


def setup_logging(debug: bool = False, log_file: str | None = None) -> logging.Handler | None:
    """Configure the root logger as the flags say; None (untouched) when neither is given."""
    if not debug and not log_file:
        return None
    if log_file:
        try:
            handler: logging.Handler = logging.handlers.WatchedFileHandler(log_file)
        except OSError as exc:
            raise VifdoctorError(f"cannot open log file {log_file}: {exc.strerror}") from None
    else:
        handler = logging.StreamHandler()
    handler.setFormatter(MaskingFormatter(FORMAT, DATE_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for name, level in QUIET.items():
        logging.getLogger(name).setLevel(level)
    return handler
