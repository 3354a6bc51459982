"""vifdoctor.sources.ovn against a real NB/SB ovsdb-server pair and ovn-northd (tests/ovnlab.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from vifdoctor.errors import VifdoctorError
from vifdoctor.sources.ovn import read_ovn, resolve_ovn

if TYPE_CHECKING:
    from vifdoctor.demo.ovnlab import OvnLab

pytest_plugins = ["testkit.ovnlab"]
REPO = Path(__file__).resolve().parents[2]


def _view(lab: OvnLab, down_time: float = 75):
    return read_ovn(resolve_ovn(lab.nb, lab.sb, []), down_time)


def test_chassis_are_agents_as_neutron_synthesizes_them(ovn_lab: OvnLab) -> None:
    ovn_lab.add_chassis(
        "ch-gw",
        "net1",
        other_config={
            "ovn-bridge-mappings": "physnet1:br-ex,physnet2:br-vlan",
            "ovn-cms-options": "enable-chassis-as-gw,availability-zones=az1",
        },
    )
    ovn_lab.add_chassis(
        "ch-dpdk",
        "dpdk1",
        other_config={"datapath-type": "netdev", "iface-types": "dpdkvhostuser,geneve,internal"},
        private_external_ids={"neutron:ovn-bridge": "br-dpdk"},
    )
    ovn_lab.add_chassis("ch-dead", "cmp2", alive=False)
    ovn_lab.add_chassis("ch-bad", "cmp3", other_config={"ovn-bridge-mappings": "physnet1"})
    ovn_lab.add_chassis("ch-noprivate", "cmp4", private=False)
    view = _view(ovn_lab)
    gw, dpdk, dead = view.by_name["ch-gw"], view.by_name["ch-dpdk"], view.by_name["ch-dead"]
    assert gw.gateway and gw.agent_type == "OVN Controller Gateway agent"
    assert gw.physnets == ("physnet1", "physnet2") and gw.ovn_bridge == "br-int"
    assert (dpdk.datapath_type, dpdk.ovn_bridge) == ("netdev", "br-dpdk")
    assert "dpdkvhostuser" in dpdk.iface_types and not dpdk.gateway
    assert gw.alive and dpdk.alive
    assert not dead.alive and "behind" in dead.liveness
    assert view.by_name["ch-bad"].mappings_error and view.by_name["ch-bad"].physnets == ()
    # A Chassis with no Chassis_Private is no agent (AgentCache skips it).
    assert view.agents_on("cmp4") == [] and view.without_agent_on("cmp4")
    assert [c.name for c in view.agents_on("net1")] == ["ch-gw"]


def test_liveness_follows_nb_cfg_then_timestamp(ovn_lab: OvnLab) -> None:
    ovn_lab.add_chassis("ch-a", "cmp1")
    ovn_lab.add_chassis("ch-b", "cmp2")
    # ch-b stops answering; two rounds later it is behind, but its report is fresh.
    ovn_lab._live.discard("ch-b")
    ovn_lab.bump_nb_cfg()
    ovn_lab.bump_nb_cfg()
    view = _view(ovn_lab, down_time=75)
    assert view.by_name["ch-b"].alive and "within agent_down_time" in view.by_name["ch-b"].liveness
    time.sleep(1.2)
    view = _view(ovn_lab, down_time=1)
    assert not view.by_name["ch-b"].alive
    assert view.by_name["ch-a"].alive  # caught up: the timestamp does not matter


def test_ports_with_switch_options_and_claims(ovn_lab: OvnLab) -> None:
    ovn_lab.add_chassis("ch-a", "cmp1")
    ovn_lab.add_chassis("ch-b", "cmp2")
    ovn_lab.nbctl("ls-add", "neutron-net1")
    for port in ("p1", "p2", "p3"):
        ovn_lab.nbctl("lsp-add", "neutron-net1", port)
    ovn_lab.nbctl(
        "lsp-set-options", "p2", "requested-chassis=cmp1,cmp2", "activation-strategy=rarp"
    )
    ovn_lab.nbctl(
        "set",
        "Logical_Switch_Port",
        "p1",
        'external_ids:"neutron:port_name"=vm1',
        'external_ids:"neutron:device_owner"="compute:nova"',
    )
    ovn_lab.claim("p1", "ch-a", up=True)
    ovn_lab.claim("p2", "ch-a", additional=["ch-b"], up=True)
    ovn_lab.wait_lsp_up("p1", True)
    view = _view(ovn_lab)
    p1, p2, p3 = view.ports["p1"], view.ports["p2"], view.ports["p3"]
    assert (p1.switch, p1.claimed_by, p1.up, p1.has_port_name) == (
        "neutron-net1",
        "ch-a",
        True,
        True,
    )
    assert p1.device_owner == "compute:nova"
    assert p2.requested_chassis == "cmp1,cmp2" and p2.additional_chassis == ("ch-b",)
    assert p3.claimed_by is None and p3.has_port_binding and not p3.has_port_name
    assert view.source["logical_switch_ports"] == 3 and view.source["port_bindings_claimed"] == 2


def test_reading_never_writes(ovn_lab: OvnLab) -> None:
    """OVSDB appends every committed transaction to its file: reading must not grow it."""
    ovn_lab.add_chassis("ch-a", "cmp1")
    ovn_lab.nbctl("ls-add", "neutron-net1")
    ovn_lab.nbctl("lsp-add", "neutron-net1", "p1")
    ovn_lab.wait_port_binding("p1")
    time.sleep(0.2)  # let northd settle its own writes
    files = [ovn_lab.dir / "nb.db", ovn_lab.dir / "sb.db"]
    before = [f.read_bytes() for f in files]
    _view(ovn_lab)
    assert [f.read_bytes() for f in files] == before


def test_connection_errors_are_one_line(ovn_lab: OvnLab, tmp_path: Path) -> None:
    cases = {
        (ovn_lab.sb, ovn_lab.sb): "is not an OVN Northbound database (it serves OVN_Southbound)",
        (ovn_lab.nb, ovn_lab.nb): "is not an OVN Southbound database (it serves OVN_Northbound)",
        (f"unix:{tmp_path}/none.sock", ovn_lab.sb): "cannot reach the OVN Northbound database",
        ("tcp:127.0.0.1:1", ovn_lab.sb): "Connection refused",
        ("http://nb", ovn_lab.sb): "is not tcp:IP:PORT, ssl:IP:PORT or unix:PATH",
        ("ssl:127.0.0.1:6641", ovn_lab.sb): "ovn_nb_private_key",
        (ovn_lab.nb, None): "OVN NB given without the SB",
    }
    for (nb, sb), text in cases.items():
        with pytest.raises(VifdoctorError, match=None) as info:
            read_ovn(resolve_ovn(nb, sb, []), 75) if sb else resolve_ovn(nb, sb, [])
        assert text in str(info.value) and "\n" not in str(info.value)


def test_cluster_list_and_config_file(ovn_lab: OvnLab, tmp_path: Path) -> None:
    """A comma list whose first member is down still reads (as neutron's IDL fails over);
    [ovn] comes from ml2_conf.ini; a flag wins over the file."""
    conf = tmp_path / "ml2_conf.ini"
    conf.write_text(
        f"[ovn]\novn_nb_connection = unix:{tmp_path}/gone.sock,{ovn_lab.nb}\n"
        f"ovn_sb_connection = {ovn_lab.sb}\nvhost_sock_dir = /run/vhu\n"
        "ovs_create_tap = false\n"
    )
    settings = resolve_ovn(None, None, [str(conf)])
    assert settings.nb.source == "[ovn] ovn_nb_connection"
    assert (settings.vhost_sock_dir, settings.ovs_create_tap) == ("/run/vhu", False)
    assert read_ovn(settings, 75).source["nb"] == ovn_lab.nb
    assert resolve_ovn(None, "unix:/x", [str(conf)]).sb.connection == "unix:/x"
    assert not resolve_ovn(None, None, []).given


def test_reply_timeout_is_neutrons_ovsdb_connection_timeout(tmp_path: Path) -> None:
    """A large NB builds a select's reply for minutes before its first byte: the wait is
    neutron's own [ovn] ovsdb_connection_timeout (180 s unless set), never cut shorter."""
    conf = tmp_path / "ml2_conf.ini"
    conf.write_text("[ovn]\novn_nb_connection = unix:/nb\novn_sb_connection = unix:/sb\n")
    assert resolve_ovn(None, None, [str(conf)]).timeout == 180
    conf.write_text(conf.read_text() + "ovsdb_connection_timeout = 900\n")
    assert resolve_ovn(None, None, [str(conf)]).timeout == 900
    assert resolve_ovn("unix:/nb", "unix:/sb", []).timeout == 180


def test_missing_extra_is_one_line() -> None:
    code = (
        "import sys; sys.modules['ovsdbapp'] = None\n"
        "from vifdoctor.sources.ovn import _libraries\n"
        "from vifdoctor.errors import VifdoctorError\n"
        "try:\n    _libraries()\nexcept VifdoctorError as e:\n    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    )
    assert done.stdout.strip() == "reading OVN needs ovsdbapp: pip install 'vifdoctor[ovn]'"


def test_rows_stream_across_reads_of_any_size(
    ovn_lab: OvnLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows are parsed as the server's bytes arrive: a row, a UTF-8 character or the
    reply's envelope cut by a read changes nothing, and a server error still ends in
    one line."""
    from vifdoctor.sources import ovn

    ovn_lab.add_chassis("ch-a", "cmp-é1")
    ovn_lab.nbctl("ls-add", "neutron-net1")
    for port in ("p1", "p2", "p3"):
        ovn_lab.nbctl("lsp-add", "neutron-net1", port)
    ovn_lab.nbctl(
        "set",
        "Logical_Switch_Port",
        "p2",
        'external_ids:"neutron:port_name"="vm-ü中"',
        'external_ids:"neutron:device_owner"="compute:zone-ß"',
        'options:requested-chassis="cmp-é1"',
    )
    ovn_lab.claim("p2", "ch-a", up=True)
    whole = _view(ovn_lab, 75)
    for size in (1, 3, 7, 64):
        monkeypatch.setattr(ovn._Session, "RECV_BYTES", size)
        view = read_ovn(resolve_ovn(ovn_lab.nb, ovn_lab.sb, []), 75, now_s=None)
        assert view.ports == whole.ports and view.source == whole.source
        assert [c.name for c in view.chassis] == ["ch-a"]
    p2 = whole.ports["p2"]
    assert (p2.device_owner, p2.requested_chassis, p2.claimed_by) == (
        "compute:zone-ß",
        "cmp-é1",
        "ch-a",
    )
    import ovs.poller
    import ovs.stream

    session = ovn._Session(ovs, ovn_lab.nb, 10)
    try:
        with pytest.raises(VifdoctorError) as err:
            list(session.select("OVN_Northbound", "No_Such_Table", ["_uuid"]))
        assert "\n" not in str(err.value) and "No_Such_Table" in str(err.value)
        # the session is still in step: the next select reads its own reply
        switches = session.select("OVN_Northbound", "Logical_Switch", ["name"])
        assert [r["name"] for r in switches] == ["neutron-net1"]
    finally:
        session.close()
