"""The spool keeps rows on disk and gives them back sorted by key, stable for ties."""

from __future__ import annotations

import io
import json
import operator
import random

import pytest

from vifdoctor.spool import Spool, sort_on_disk


def test_rows_come_back_sorted_by_key_and_stable_for_equal_keys():
    spool = Spool()
    rows = [({"n": i, "k": k}, (k,)) for i, k in enumerate("cabacb")]
    for row, key in rows:
        spool.add(row, key)
    got = list(spool)
    assert [r["k"] for r in got] == list("aabbcc")
    # equal keys keep insertion order
    assert [r["n"] for r in got if r["k"] == "a"] == [1, 3]
    assert [r["n"] for r in got if r["k"] == "c"] == [0, 4]
    assert len(spool) == 6 and bool(spool)


def test_tuple_keys_sort_like_tuples_not_like_joined_strings():
    spool = Spool()
    # "ab" + "c" and "a" + "bc" join to the same text; as tuples "a" < "ab"
    spool.add({"id": 1}, ("ab", "c"))
    spool.add({"id": 2}, ("a", "bc"))
    spool.add({"id": 3}, ("a", "b"))
    assert [r["id"] for r in spool] == [3, 2, 1]


def test_reiterable_and_appendable_after_reading():
    spool = Spool()
    spool.add({"x": "é ü"}, ("2",))
    assert list(spool) == [{"x": "é ü"}]
    spool.add({"x": 1}, ("1",))
    assert list(spool) == [{"x": 1}, {"x": "é ü"}]
    assert list(spool) == [{"x": 1}, {"x": "é ü"}]


def test_empty_spool():
    spool = Spool()
    assert list(spool) == [] and len(spool) == 0 and not spool


def test_many_rows_in_random_order():
    keys = [f"{i:06d}" for i in range(20000)]
    random.Random(7).shuffle(keys)
    spool = Spool()
    for k in keys:
        spool.add({"k": k, "pad": "x" * 50}, (k,))
    out = [r["k"] for r in spool]
    assert out == sorted(keys)
    spool.close()


def test_keys_spilled_to_runs_merge_sorted_and_stable(monkeypatch):
    # a few keys per run: most of them on disk, as a million-port audit's findings are
    monkeypatch.setattr(Spool, "INDEX_RUN", 7)
    monkeypatch.setattr(Spool, "RUN_BLOCK", 3)
    rng = random.Random(3)
    rows = [(i, rng.choice("abcde")) for i in range(200)]
    spool = Spool()
    for i, k in rows:
        spool.add({"n": i, "k": k}, (k,))
    expected = [i for i, _ in sorted(rows, key=lambda r: r[1])]  # stable: insertion order
    assert [r["n"] for r in spool] == expected
    assert [r["n"] for r in spool] == expected  # re-iterable
    assert len(spool) == 200 and bool(spool)
    spool.add({"n": 200, "k": "a"}, ("a",))  # appendable after reading
    rows.append((200, "a"))
    assert [r["n"] for r in spool] == [i for i, _ in sorted(rows, key=lambda r: r[1])]
    spool.close()


def test_lines_next_to_each_other_are_read_together(monkeypatch):
    """Rows added in key order are read back a block at a time (one pread for many lines,
    never more than READ_BYTES), rows out of order one by one: the same lines either way."""
    from vifdoctor import spool as spool_module

    monkeypatch.setattr(spool_module, "READ_BYTES", 100)
    reads: list[int] = []
    real = spool_module.os.pread
    monkeypatch.setattr(
        spool_module.os, "pread", lambda fd, n, at: (reads.append(n), real(fd, n, at))[1]
    )
    in_order, shuffled = Spool(), Spool()
    rows = [{"n": i, "pad": "y" * (i % 7)} for i in range(60)]
    for row in rows:
        in_order.add(row)
    keys = list(range(60))
    random.Random(5).shuffle(keys)
    for k in keys:
        shuffled.add(rows[k], (f"{k:03d}",))
    assert list(in_order) == rows
    assert 60 > len(reads) >= sum(len(json.dumps(r)) for r in rows) // 100
    assert max(reads) <= 100
    reads.clear()
    assert list(shuffled) == rows
    assert len(reads) >= 50  # lines apart in the file: mostly one read each
    in_order.close()
    shuffled.close()


def test_a_spool_rendered_to_a_text_stream_and_to_its_bytes_is_the_same(tmp_path, monkeypatch):
    """render writes a spool's lines to the binary stream under a UTF-8 TextIOWrapper
    (stdout), as bytes: the same document as through any text stream."""
    from vifdoctor.report import json as json_report
    from vifdoctor.report.json import render

    as_bytes: list[int] = []
    real = json_report._write_byte_lines
    monkeypatch.setattr(
        json_report, "_write_byte_lines", lambda *a: (as_bytes.append(1), real(*a))[1]
    )

    findings = Spool()
    for i in range(2500):  # several chunks of 1,000 lines
        findings.add({"n": i, "text": "caf\u00e9 \udcff \U0001f600", "nan": "nan"}, (f"{i:05d}",))

    class Listing:
        document = {"tool": {"name": "x\u00e9"}, "findings": findings, "empty": Spool()}
        rows_key = None

    text = io.StringIO()
    render(Listing(), text)  # type: ignore[arg-type]
    path = tmp_path / "out.json"
    with open(path, "w", encoding="utf-8", errors="backslashreplace") as out:
        render(Listing(), out)  # type: ignore[arg-type]
    assert as_bytes == [1, 1]  # both spools, and only to the file
    assert path.read_bytes() == text.getvalue().encode("utf-8", "backslashreplace")
    assert json.loads(text.getvalue())["findings"][7]["n"] == 7


@pytest.mark.parametrize("run_size", [3, 4, 5, 100])
def test_sort_on_disk_is_stable_for_equal_keys_in_memory_and_across_runs(run_size):
    """The writer sorts its rows by primary key only: rows of one key (a hand-made
    backup's) keep their order, and their other fields (None beside text) are never
    compared. 12 rows: runs of 3 and 4 divide them exactly, 5 leaves a short last run."""
    rows = [(f"p{i % 4}", "h", i, None if i % 2 else "x", str(i)) for i in range(12)]
    out = list(sort_on_disk(iter(rows), operator.itemgetter(0, 1), run_size, 2))
    assert out == sorted(rows, key=lambda r: (r[0], r[2]))
    assert list(sort_on_disk(iter([]), None, run_size, 2)) == []
