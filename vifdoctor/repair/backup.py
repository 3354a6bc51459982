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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any, NoReturn

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


def _head_parts(head: dict) -> tuple[str, str]:
    """The canonical text of the body around its rows: the checksum hashes
    ``before + "[" + rows joined by "," + "]" + after``, which equals :func:`_checksum`'s
    text of the whole body byte for byte, with no copy of it held (issue 14)."""
    # A value no header holds, whose JSON text cannot occur inside another value's.
    mark = f"rows-{uuid.uuid4().hex}"
    before, after = _CANONICAL({**head, "rows": mark}).split(json.dumps(mark), 1)
    return before, after


#: The checksum's text in the head written first: a placeholder of the same length,
#: replaced in place once every row is written and hashed.
_SEAL_LENGTH = len("sha256:") + 64
_ROWS_OPEN = ', "rows": ['
_CANONICAL = encoder(sort_keys=True, separators=(",", ":"), allow_nan=True)


class RowEncoder:
    """A repair's backup rows, ``{"original": {column: value}, "written": new, "codes":
    [...]}``, as the canonical text :class:`BackupWriter` writes and hashes, made from
    the rows' values in ``columns``' order with no dict built per row.

    The text is :data:`_CANONICAL`'s of that dict byte for byte (sorted keys, compact,
    ASCII): the keys' order and separators are fixed once in a %-format, and each
    text value goes through the JSON module's own C escaping. A chunk whose values are
    all text is encoded column by column at C speed; one holding anything else (NULL,
    a BLOB's tagged bytes: the C escaping refuses it) is encoded as dicts, as before.
    Building the dicts and encoding them with sorted keys was 0.35 s of CPU per
    100,000 rows (issue 14), before the first write.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = tuple(columns)
        order = sorted(range(len(self.columns)), key=self.columns.__getitem__)
        keys = (_ESCAPE(self.columns[i]).replace("%", "%%") for i in order)
        original = ",".join(f"{key}:%s" for key in keys)
        self._order = order
        self._format = ('{"codes":%s,"original":{' + original + '},"written":%s}').__mod__
        self._codes: dict[tuple[str, ...], str] = {}

    def encode(
        self,
        originals: Sequence[Sequence[Any]],
        written: Sequence[str | None],
        codes: Sequence[tuple[str, ...]],
    ) -> list[str]:
        """Each row's canonical text (ASCII); ``originals``: each row's values in
        ``columns``' order, with what it writes and its codes."""
        if not originals:
            return []
        for new in set(codes).difference(self._codes):
            self._codes[new] = _CANONICAL(list(new))
        columns = list(zip(*originals, strict=True))
        if len(columns) == len(self.columns):
            escaped = (map(_ESCAPE, columns[i]) for i in self._order)
            codes_text = map(self._codes.__getitem__, codes)
            rows = zip(codes_text, *escaped, map(_ESCAPE, written), strict=True)
            try:  # the C escaping takes text only (a str, as the encoder treats it)
                return list(map(self._format, rows))
            except TypeError:  # NULL, a BLOB's tagged bytes: the rows as dicts
                pass
        return [
            _CANONICAL(
                {"original": dict(zip(self.columns, row, strict=True)), "written": new,
                 "codes": list(code)}
            )
            for row, new, code in zip(originals, written, codes, strict=True)
        ]  # fmt: skip


def canonical_row(row: dict) -> str:
    """A backup row's text as the file holds it and its checksum hashes it (ASCII)."""
    return _CANONICAL(row)


#: The JSON module's C escaping of a text, quotes included (what _CANONICAL does with
#: each text: ensure_ascii).
_ESCAPE: Callable[[Any], str] = json.encoder.encode_basestring_ascii


class BackupWriter:
    """A backup written row by row as the rows are known, sealed when it is closed.

    The file is the one :func:`write_backup` always wrote (a head line holding the
    checksum, then one canonical row per line): the head goes first with a placeholder
    checksum of the same length, each row is hashed as it is written, and the seal is
    written over the placeholder at the end, before the fsync and the rename. No row is
    held: a repair of 400,000 rows kept its whole backup in memory before (issue 14).
    Use as a context manager; an exception inside leaves no file behind, and so does
    a backup of no row unless ``keep_empty`` (then ``sealed`` stays False).
    """

    def __init__(self, folder: str, header: dict, *, name: str, keep_empty: bool = True) -> None:
        self.folder = folder
        self.path = os.path.join(folder, name)
        self.keep_empty = keep_empty
        self.sealed = False
        self.rows = 0
        head = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tool_version": __version__,
            "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            **header,
        }
        before, self._after = _head_parts(head)
        self._digest = hashlib.sha256(before.encode("utf-8") + b"[")
        placeholder = "sha256:" + uuid.uuid4().hex + uuid.uuid4().hex
        text = json.dumps({**head, "checksum": placeholder}, default=str)
        self._head = (text[:-1] + _ROWS_OPEN).encode("utf-8")
        self._seal_at = self._head.index(placeholder.encode("ascii"))
        self._tmp = self.path + ".partial"
        self._fh: IO[bytes] | None = None

    def __enter__(self) -> BackupWriter:
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            self._fh = os.fdopen(fd, "wb", buffering=2**20)
            self._fh.write(self._head)
        except OSError as exc:
            self._fail(exc)
        return self

    def add(self, row: dict) -> None:
        """One row: written in the checksum's canonical form (sorted keys, compact)."""
        self.add_encoded([canonical_row(row)])

    def add_encoded(self, texts: Sequence[str]) -> None:
        """Rows already in their canonical form (:func:`canonical_row`,
        :class:`RowEncoder`), in order: hashed and written a chunk at a time."""
        if not texts:
            return
        body = ",".join(texts).encode("utf-8")
        self._digest.update(b"," + body if self.rows else body)
        text = ("\n  " if not self.rows else ",\n  ") + ",\n  ".join(texts)
        assert self._fh is not None
        try:
            self._fh.write(text.encode("utf-8"))
        except OSError as exc:
            self._fail(exc)
        self.rows += len(texts)

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        if kind is not None or not (self.rows or self.keep_empty):
            self._discard()
            return
        self._digest.update(b"]" + self._after.encode("utf-8"))
        seal = ("sha256:" + self._digest.hexdigest()).encode("ascii")
        assert len(seal) == _SEAL_LENGTH and self._fh is not None
        try:
            self._fh.write(b"\n]}\n" if self.rows else b"]}\n")
            self._fh.flush()
            os.pwrite(self._fh.fileno(), seal, self._seal_at)
            os.fsync(self._fh.fileno())
            self._fh.close()
            os.replace(self._tmp, self.path)
            self.sealed = True
            dir_fd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            self._fail(exc)

    def _discard(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)

    def _fail(self, exc: OSError) -> NoReturn:
        self._discard()
        raise VifdoctorError(
            f"cannot write the backup in {self.folder}: {exc.strerror or exc}; nothing was changed"
        ) from None


def write_backup(folder: str, header: dict, rows: Iterable[dict], *, name: str) -> str:
    """Write the backup file; raise VifdoctorError (nothing written) if it cannot be done."""
    with BackupWriter(folder, header, name=name) as backup:
        for row in rows:
            backup.add(row)
    return backup.path


def read_backup(path: str) -> Backup:
    """Load a backup and check that it is whole and unaltered."""
    header, rows = scan_backup(path)
    return Backup(path, header, list(rows))


def scan_backup(path: str) -> tuple[dict, Iterator[dict]]:
    """A backup's header (format checked), then its rows one at a time.

    The checksum covers the header and every row, so it is proved only once the last
    row is read: the iterator raises VifdoctorError then if the seal is broken. A caller
    must read every row before it acts on any (rollback copies them to a spool of its
    own first). A file in the layout vifdoctor writes (one row per line) is read line by
    line, memory flat; any other valid JSON (a backup made by hand) is loaded whole.
    """
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the iterator, or below
    except OSError as exc:
        raise VifdoctorError(f"cannot read backup {path}: {exc.strerror or exc}") from None
    try:
        first = fh.readline()
        if first.rstrip(b"\n").endswith(_ROWS_OPEN.encode("ascii")):
            head = _loads(path, first.rstrip(b"\n")[: -len(_ROWS_OPEN)] + b"}")
            _check_format(path, head)
            return _header(head), _lines(path, fh, head)
        body = _loads(path, first + fh.read())
    except BaseException:
        fh.close()
        raise
    fh.close()
    _check_format(path, body)
    stated = body.pop("checksum", None)
    if stated != _checksum(body):
        raise VifdoctorError(f"backup {path} fails its checksum: it was altered or is damaged")
    rows = body.pop("rows", None)
    if not isinstance(rows, list):
        raise VifdoctorError(f"backup {path} has malformed rows")
    return body, iter(rows)


def _loads(path: str, text: bytes) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise VifdoctorError(f"backup {path} is not valid JSON: {exc}") from None


def _check_format(path: str, body: object) -> None:
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise VifdoctorError(f"{path} is not a vifdoctor backup")
    if body.get("format_version") != FORMAT_VERSION:
        raise VifdoctorError(
            f"backup {path} has format version {body.get('format_version')!r}, "
            f"this vifdoctor reads {FORMAT_VERSION}"
        )


def _header(head: dict) -> dict:
    return {k: v for k, v in head.items() if k != "checksum"}


def _lines(path: str, fh: IO[bytes], head: dict) -> Iterator[dict]:
    """The rows of a backup in vifdoctor's layout, hashed as they are read; the seal is
    checked after the last (before that, the rows are only the file's claim)."""
    with fh:
        before, after = _head_parts(_header(head))
        digest = hashlib.sha256(before.encode("utf-8") + b"[")
        n = 0
        ended = False
        for line in fh:
            text = line.strip()
            if ended or not text:
                if text:  # anything after the closing bracket
                    raise VifdoctorError(f"backup {path} is not valid JSON: data after its end")
                continue
            if text == b"]}":
                ended = True
                continue
            row = _loads(path, text[:-1] if text.endswith(b",") else text)
            canonical = _CANONICAL(row).encode("utf-8")
            digest.update(b"," + canonical if n else canonical)
            n += 1
            yield row
        if not ended:
            raise VifdoctorError(f"backup {path} is not valid JSON: it ends before its rows do")
        digest.update(b"]" + after.encode("utf-8"))
        if head.get("checksum") != "sha256:" + digest.hexdigest():
            raise VifdoctorError(f"backup {path} fails its checksum: it was altered or is damaged")


def check_restorable(backup: Backup) -> None:
    """A database backup ``rollback`` can trust, even if hand-made with a valid checksum."""
    check_header(backup.path, backup.header)
    for n, row in enumerate(backup.rows):
        check_row(backup.path, n, row)


def check_header(path: str, header: dict) -> None:
    """It must say which database it was taken on: a backup without a ``database``
    header would be restored anywhere."""
    database = header.get("database")
    if not isinstance(database, dict) or not isinstance(database.get("name"), (str, type(None))):
        raise VifdoctorError(
            f"backup {path} has no database header: it cannot say "
            "which database it belongs to, so it is not restored anywhere"
        )


def check_row(path: str, n: int, row: object) -> None:
    """Row ``n`` (from 0) must be what a repair writes."""
    bad = _row_problem(row)
    if bad:
        raise VifdoctorError(f"backup {path} has a malformed row {n + 1}: {bad}")


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
