"""A repair's backup rows encoded from their values (``RowEncoder``), not as dicts.

The text must be the canonical JSON of the row dict byte for byte: the backup's seal
hashes it, and ``rollback`` re-encodes each row it reads with the canonical encoder to
prove the seal. Any difference (a key order, an escape, a separator) would make every
such backup refused.
"""

from __future__ import annotations

import random

import pytest

from vifdoctor.repair.backup import (
    BackupWriter,
    RowEncoder,
    canonical_row,
    read_backup,
    scan_backup,
)

COLUMNS = ["port_id", "host", "vif_type", "vnic_type", "profile", "vif_details", "status"]
TEXTS = [
    "",
    "ovs",
    '{"port_filter": true, "ovs_hybrid_plug": true}',
    "quote ' and \" and \\ backslash",
    "line\nbreak\ttab\x00nul\x1b",
    "caf\u00e9 \u65e5\u672c \U0001f600",
    "\ud800 lone surrogate",
    "{} {0} {name} %s %% braces",
    "\u202e bidi \u200b zero width",
]
BYTES = {"type": "bytes", "base64": "AP8="}


def _row(columns, original, written, codes) -> dict:
    return {"original": dict(zip(columns, original, strict=True)), "written": written,
            "codes": list(codes)}  # fmt: skip


@pytest.mark.parametrize("seed", range(5))
def test_encoded_rows_equal_the_canonical_text_of_their_dicts(seed):
    rng = random.Random(seed)
    columns = COLUMNS[:]
    rng.shuffle(columns)  # the table's order, whatever it is
    encoder = RowEncoder(columns)
    for _ in range(60):
        rows = []
        for _ in range(rng.randint(1, 8)):  # a chunk: all text, or one odd value in it
            odd = rng.random() < 0.1
            values = [*TEXTS, None, BYTES] if odd else TEXTS
            original = tuple(rng.choice(values) for _ in columns)
            written = rng.choice([*TEXTS, None] if odd else TEXTS)
            codes = tuple(rng.sample(["VD101", "VD102", "rollback", "\u00e9"], rng.randint(0, 3)))
            rows.append((original, written, codes))
        originals, written_, codes_ = (list(x) for x in zip(*rows, strict=True))
        expected = [canonical_row(_row(columns, *row)) for row in rows]
        assert encoder.encode(originals, written_, codes_) == expected
    assert encoder.encode([], [], []) == []


def test_odd_column_names_and_one_column():
    for columns in (["b", 'a"{x}%s', "{}", "%", "A"], ["only"]):
        encoder = RowEncoder(columns)
        original = tuple(f"v{i}\u00e9" for i in range(len(columns)))
        assert encoder.encode([original], ["w"], [("VD101",)]) == [
            canonical_row(_row(columns, original, "w", ("VD101",)))
        ]


def test_a_backup_of_encoded_rows_is_the_one_of_dicts_and_proves_its_seal(tmp_path):
    encoder = RowEncoder(COLUMNS)
    rows = [(tuple(f"{c}-{i}-\u00e9'" for c in COLUMNS), f"new {i}", ("VD101",)) for i in range(7)]
    header = {"kind": "repair", "database": {"name": "x"}}
    with BackupWriter(str(tmp_path / "a"), header, name="b.json") as by_dict:
        for original, written, codes in rows:
            by_dict.add(_row(COLUMNS, original, written, codes))
    with BackupWriter(str(tmp_path / "b"), header, name="b.json") as by_text:
        texts = encoder.encode(*(list(x) for x in zip(*rows, strict=True)))
        by_text.add_encoded(texts[:3])
        by_text.add_encoded([])
        by_text.add_encoded(texts[3:])
    a = (tmp_path / "a" / "b.json").read_bytes().splitlines()
    b = (tmp_path / "b" / "b.json").read_bytes().splitlines()
    assert a[1:] == b[1:]  # the head differs by its time and seal only
    _, lines = scan_backup(by_text.path)
    assert list(lines) == [_row(COLUMNS, *row) for row in rows]  # the seal proved at the end
    assert read_backup(by_text.path).rows == [_row(COLUMNS, *row) for row in rows]
