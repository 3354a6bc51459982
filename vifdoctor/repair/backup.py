"""Backups that can restore every row a repair touches, written safely before any write.

One JSON file per run: the original rows with all their columns, the value
the repair will write, and a header (tool version, database URL without its
password, layout, time) sealed by a SHA-256 checksum. The file is created
0600, fsync-ed and renamed into place, so a backup that exists is whole.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

from vifdoctor import __version__
from vifdoctor.errors import VifdoctorError
from vifdoctor.strictjson import encoder

FORMAT = "vifdoctor-backup"
FORMAT_VERSION = 1


@dataclass
class Backup:
    path: str
    header: dict
    rows: list[dict]  # {"original": {column: value}, "written": str, "codes": [...]}


def default_dir(now: datetime.datetime | None = None) -> str:
    stamp = (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return os.path.join(os.getcwd(), f"vifdoctor-backup-{stamp}")


def _checksum(body: dict) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _sealed(body: dict) -> tuple[str, list[str]]:
    """The file's head (up to its rows) and its rows' texts, each row encoded once.

    Rows are written in the checksum's own canonical form (sorted keys, compact), one
    per line; the canonical text of the whole body is the same row texts set in place
    of a placeholder, so the checksum, hashed piece by piece (no copy of the whole
    text), equals :func:`_checksum`'s byte for byte (issue 14).
    """
    canonical = encoder(sort_keys=True, separators=(",", ":"), allow_nan=True)
    rows = [canonical(r) for r in body["rows"]]
    head = {k: v for k, v in body.items() if k != "rows"}
    # A value no header holds, whose JSON text cannot occur inside another value's.
    mark = f"rows-{uuid.uuid4().hex}"
    before, after = canonical({**head, "rows": mark}).split(json.dumps(mark), 1)
    digest = hashlib.sha256(before.encode("utf-8") + b"[")
    for n, row in enumerate(rows):
        digest.update(("," + row if n else row).encode("utf-8"))
    digest.update(b"]" + after.encode("utf-8"))
    text = json.dumps({**head, "checksum": "sha256:" + digest.hexdigest()}, default=str)
    return text[:-1] + ', "rows": [', rows


def _write_sealed(fh: IO[str], head: str, rows: list[str], chunk: int = 1000) -> None:
    """The head, then one row per line, a chunk at a time (no giant string)."""
    fh.write(head)
    for start in range(0, len(rows), chunk):
        fh.write(("\n  " if not start else ",\n  ") + ",\n  ".join(rows[start : start + chunk]))
    fh.write("\n]}\n" if rows else "]}\n")


def write_backup(folder: str, header: dict, rows: Iterable[dict], *, name: str) -> str:
    """Write the backup file; raise VifdoctorError (nothing written) if it cannot be done."""
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        **header,
        "rows": list(rows),
    }
    head, texts = _sealed(body)
    path = os.path.join(folder, name)
    tmp = path + ".partial"
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            _write_sealed(fh, head, texts)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise VifdoctorError(
            f"cannot write the backup in {folder}: {exc.strerror or exc}; nothing was changed"
        ) from None
    return path


def read_backup(path: str) -> Backup:
    """Load a backup and check that it is whole and unaltered."""
    try:
        with open(path, encoding="utf-8") as fh:
            body = json.load(fh)
    except OSError as exc:
        raise VifdoctorError(f"cannot read backup {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise VifdoctorError(f"backup {path} is not valid JSON: {exc}") from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise VifdoctorError(f"{path} is not a vifdoctor backup")
    if body.get("format_version") != FORMAT_VERSION:
        raise VifdoctorError(
            f"backup {path} has format version {body.get('format_version')!r}, "
            f"this vifdoctor reads {FORMAT_VERSION}"
        )
    stated = body.pop("checksum", None)
    if stated != _checksum(body):
        raise VifdoctorError(f"backup {path} fails its checksum: it was altered or is damaged")
    rows = body.pop("rows", None)
    if not isinstance(rows, list):
        raise VifdoctorError(f"backup {path} has malformed rows")
    return Backup(path, body, rows)


def check_restorable(backup: Backup) -> None:
    """A database backup ``rollback`` can trust, even if hand-made with a valid checksum.

    It must say which database it was taken on (a backup without a ``database``
    header would be restored anywhere), and every row must be what a repair writes.
    """
    database = backup.header.get("database")
    if not isinstance(database, dict) or not isinstance(database.get("name"), (str, type(None))):
        raise VifdoctorError(
            f"backup {backup.path} has no database header: it cannot say "
            "which database it belongs to, so it is not restored anywhere"
        )
    for n, row in enumerate(backup.rows):
        bad = _row_problem(row)
        if bad:
            raise VifdoctorError(f"backup {backup.path} has a malformed row {n + 1}: {bad}")


def _is_value(value: object) -> bool:
    """A column value as backups store it: text, null, or tagged base64 bytes."""
    if value is None or isinstance(value, str):
        return True
    if (
        isinstance(value, dict)
        and value.get("type") == "bytes"
        and isinstance(value.get("base64"), str)
    ):
        try:
            base64.b64decode(value["base64"], validate=True)
        except ValueError:
            return False
        return True
    return False


def _row_problem(row: object) -> str | None:
    """Why a (checksum-valid, maybe hand-made) row cannot be restored, or None."""
    if not isinstance(row, dict) or not isinstance(row.get("original"), dict):
        return "no original columns"
    original = row["original"]
    for key in ("port_id", "host"):
        if not isinstance(original.get(key), str):
            return f"{key} is not text"
    if "vif_details" not in original or not _is_value(original["vif_details"]):
        return "vif_details is not text, null or tagged bytes"
    if not isinstance(original.get("status"), (str, type(None))):
        return "status is not text"
    if not isinstance(row.get("written"), (str, type(None))):
        return "the written value is not text or null"
    return None
