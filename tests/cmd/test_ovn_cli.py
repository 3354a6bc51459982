"""The OVN flags on the command line: one line and exit 3 when OVN cannot be read."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from testkit.cloudfactory import run_cli, write

from vifdoctor.demo.builder import CloudSpec

if TYPE_CHECKING:
    from vifdoctor.demo.ovnlab import OvnLab

pytest_plugins = ["testkit.ovnlab"]


@pytest.mark.parametrize("command", ["audit", "plan", "repair"])
def test_unreachable_or_wrong_ovn_is_one_line_exit_3(
    command: str, ovn_lab: OvnLab, sqlite_url: str, tmp_path
) -> None:
    write(sqlite_url, CloudSpec([], [], []), "ocata")
    cases = [
        ([f"unix:{tmp_path}/none.sock", ovn_lab.sb], "cannot reach the OVN Northbound"),
        ([ovn_lab.sb, ovn_lab.sb], "is not an OVN Northbound database"),
    ]
    for (nb, sb), text in cases:
        argv = [
            command,
            "--neutron-db",
            sqlite_url,
            "--ovn-nb-connection",
            nb,
            "--ovn-sb-connection",
            sb,
        ]
        code, out, err = run_cli(argv, debug=False)
        assert code == 3, (command, out, err)
        assert text in err and len(err.strip().splitlines()) == 1


def test_audit_of_an_empty_ovn_cloud(ovn_lab: OvnLab, sqlite_url: str) -> None:
    write(sqlite_url, CloudSpec([], [], []), "ocata")
    code, out, err = run_cli(
        [
            "audit",
            "--neutron-db",
            sqlite_url,
            "--ovn-nb-connection",
            ovn_lab.nb,
            "--ovn-sb-connection",
            ovn_lab.sb,
        ]
    )
    assert code == 0, err
    assert "0 of 0 VM ports fully on OVN" in out
    assert "OVN NB " + ovn_lab.nb in out and "never written" in out
