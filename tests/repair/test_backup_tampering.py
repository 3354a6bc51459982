"""A backup altered by hand (checksum recomputed) is refused with one clear line, and a
backup without a ``database`` header is never restored (issue 13)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from testkit.repairkit import checksum, cli, install_demo, one_error_line


def _reseal(body: dict) -> None:
    """The checksum as backups compute it (written here independently of vifdoctor)."""
    body.pop("checksum", None)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    body["checksum"] = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


TAMPERINGS = {
    "no-database-header": lambda b: b.pop("database"),
    "database-a-string": lambda b: b.update(database="neutron"),
    "port-id-a-number": lambda b: b["rows"][0]["original"].update(port_id=7),
    "host-missing": lambda b: b["rows"][0]["original"].pop("host"),
    "details-a-list": lambda b: b["rows"][0]["original"].update(vif_details=[1]),
    "details-bad-base64": lambda b: b["rows"][0]["original"].update(
        vif_details={"type": "bytes", "base64": "**"}
    ),
    "original-missing": lambda b: b["rows"][0].pop("original"),
    "written-a-number": lambda b: b["rows"][0].update(written=5),
    "row-a-string": lambda b: b["rows"].__setitem__(0, "row"),
    "status-a-dict": lambda b: b["rows"][0]["original"].update(status={}),
}


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampered_backup_is_refused(name, tmp_path: Path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install_demo(url)
    code, out, err = cli(
        capsys, "repair", "--neutron-db", url, "--apply", "--backup-dir", str(tmp_path / "bk")
    )
    assert code == 0, err
    [path] = sorted((tmp_path / "bk").glob("*.json"))
    body = json.loads(path.read_text())
    TAMPERINGS[name](body)
    _reseal(body)
    path.write_text(json.dumps(body))
    repaired = checksum(url)
    for extra in ([], ["--apply", "--backup-dir", str(tmp_path / "rb")]):
        code, out, err = cli(capsys, "rollback", str(path), "--neutron-db", url, *extra)
        assert code == 3, (out, err)
        assert "internal error" not in one_error_line(err)
    assert checksum(url) == repaired
