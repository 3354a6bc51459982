"""``vifdoctor demo --ovn``: the ML2/OVN cloud on a private NB/SB with a real ovn-northd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from testkit.cloudfactory import run_cli


def test_demo_ovn_shows_each_drift(tmp_path: Path) -> None:
    code, out, err = run_cli(["demo", "--ovn", "--dir", str(tmp_path), "-f", "json"])
    assert code == 0, err
    doc = json.loads(out)
    assert doc["summary"]["by_code"] == {
        "VD402": 1,
        "VD405": 1,
        "VD406": 1,
        "VD407": 1,
        "VD408": 1,
        "VD409": 1,
    }
    assert doc["ovn"]["migration"]["summary"] == "1 of 6 VM ports fully on OVN"
    # NB, SB and northd lived only while the demo ran: their folder is gone.
    (note,) = [a for a in doc["assumptions"] if a.startswith("OVN NB unix:")]
    socket = Path(note.split()[2].removeprefix("unix:"))
    assert socket.name == "nb.sock" and not socket.parent.exists()


def test_demo_ovn_without_the_tools_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ovn-northd, ovsdb-server, ...
    code, out, err = run_cli(["demo", "--ovn", "--dir", str(tmp_path)], debug=False)
    assert code == 3 and out == ""
    assert err.count("\n") == 1
    assert "apt-get install -y ovn-central ovn-common ovn-host" in err
