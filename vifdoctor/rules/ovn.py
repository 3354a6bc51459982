"""The OVN rules (VD401-VD410): a binding against OVN's Northbound and Southbound view.

Pure functions, no I/O. Each check follows a named piece of neutron 29.0.0:

* which bindings are OVN's, and the chassis a host has --
  ``OVNMechanismDriver.bind_port`` with ``AgentCache.get_agents`` (VD401, VD402)
* ``ovn-bridge-mappings`` for flat/VLAN segments -- ``bind_port`` and
  ``OvsdbSbOvnIdl._get_chassis_physnets`` (VD403)
* the vif_type and vif_details the driver writes for a chassis --
  ``bind_port`` and ``_setup_vif_port_bindings`` (VD404, VD405)
* the LSP and its ``requested-chassis`` -- ``OVNClient._get_port_options`` and
  ``_configure_requested_chassis_options`` (VD406, VD408)
* the claim -- SB ``Port_Binding.chassis``/``additional_chassis`` (VD409)
* port status from the LSP's ``up`` -- ``set_port_status_up/down`` (VD410)
* orphan LSPs -- ``OvnNbSynchronizer.sync_networks_ports_and_dhcp_opts`` (VD407)
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vifdoctor.model import (
    JUDGED,
    Agent,
    Binding,
    Finding,
    Instance,
    Severity,
    parse_json_column,
)
from vifdoctor.model_ovn import (
    DEFAULT_OVN_BRIDGE,
    OVN_SWITCH_PREFIX,
    PROVNET_PREFIX,
    OvnChassis,
    OvnPort,
    OvnView,
    Segment,
)
from vifdoctor.rules.binding import judge_binding
from vifdoctor.rules.finding import Judgement, apply_correction, declared_finding, new_finding
from vifdoctor.rules.plug import (
    AGENT_OVS,
    DATAPATH_NETDEV,
    DATAPATH_SYSTEM,
    VIF_BINDING_FAILED,
    VIF_OVS,
    VIF_UNBOUND,
    VIF_VHOSTUSER,
    RuleContext,
)
from vifdoctor.rules.registry import OVN, Scope, declare

VIF_AGILIO = "agilio_ovs"
OVN_DRIVER = "ovn"
OVS_DRIVER = "openvswitch"
# Codes judge_binding reports whatever the driver: they stay for OVN bindings too.
GENERIC_CODES = frozenset({"VD104", "VD105", "VD106", "VD109", "VD112"})
VNIC_NORMAL = "normal"
VNIC_VIRTIO_FORWARDER = "virtio-forwarder"
FLOATINGIP_OWNER = "network:floatingip"  # utils.is_lsp_ignored: no LSP by design
SYNC_UTIL = "neutron-ovn-db-sync-util"
DEFAULT_SYNC_CONFIG = ("/etc/neutron/neutron.conf", "/etc/neutron/plugins/ml2/ml2_conf.ini")


def ovn_details_correction(stored: dict, want: dict, ctx: object = None) -> dict:
    """Rewrite as the OVN driver writes for the chassis (``want``): every key it writes
    that the row lacks or holds differently, and no ovs_hybrid_plug; other keys kept."""
    sets = {k: v for k, v in want.items() if k not in stored or stored[k] != v}
    remove = ["ovs_hybrid_plug"] if "ovs_hybrid_plug" in stored else []
    return {"set": sets, "remove": remove}


_VM_PORTS = Scope(OVN, device_owners=("compute:",))
_VM_PORT_DETAILS = Scope(
    OVN, vif_types=frozenset({VIF_OVS, VIF_VHOSTUSER}), device_owners=("compute:",)
)

declare(
    "VD401",
    Severity.FAILURE,
    "no OVN chassis for the host",
    summary=("ML2/OVN: no OVN chassis has the binding's host as hostname, or several do"),
    why=(
        "No SB Chassis (with its Chassis_Private, which is what neutron's AgentCache "
        "lists) has the binding's host as its hostname, or several do. The OVN "
        "driver's bind_port refuses a host without a chassis; with several it binds "
        "to whichever its cache lists first. A renamed host, an FQDN against a short "
        "name, or a re-installed ovn-controller with a new system-id leave this "
        "behind."
    ),
    impact=(
        "The next re-bind of the port (migration, resize, host update) fails with "
        "binding_failed, and no ovn-controller claims the port for this host."
    ),
    remedy=(
        "Make the host's ovn-controller register under the name Nova and Neutron "
        "use (`ovs-vsctl set Open_vSwitch . external_ids:hostname=HOST` on the "
        "host), or delete the stale chassis (`ovn-sbctl chassis-del NAME`); then "
        "re-bind the port."
    ),
    applies_to=_VM_PORTS,
)

declare(
    "VD402",
    Severity.FAILURE,
    "OVN chassis dead",
    summary=(
        "ML2/OVN: the host's chassis is dead, as neutron's AgentCache judges it "
        "(nb_cfg, nb_cfg_timestamp)"
    ),
    why=(
        "The host's chassis is dead as neutron's AgentCache judges it: its "
        "Chassis_Private.nb_cfg is more than one round behind NB_Global.nb_cfg and "
        "its nb_cfg_timestamp is older than agent_down_time. ovn-controller is down, "
        "hung or cannot reach the SB."
    ),
    impact=(
        "The port's flows are no longer updated on the host; neutron refuses to "
        "bind any port there, so migrations to the host and new VMs on it fail."
    ),
    remedy=(
        "Check ovn-controller on the host (`systemctl status ovn-controller`, its "
        "log, `ovs-vsctl get Open_vSwitch . external_ids:ovn-remote`), then "
        "`openstack network agent list --host HOST` until it is alive."
    ),
    applies_to=_VM_PORTS,
)

declare(
    "VD403",
    Severity.FAILURE,
    "physical network not mapped on the chassis",
    summary=(
        "ML2/OVN: the port's flat/VLAN physical network is not in the chassis's ovn-bridge-mappings"
    ),
    why=(
        "The port's flat or VLAN segment is on a physical network that the chassis's "
        "ovn-bridge-mappings (other_config) does not map, or the mappings do not "
        "parse. The OVN driver refuses to bind the port to this host."
    ),
    impact=(
        "The port has no path to its provider network from this host; the next "
        "re-bind fails (binding_failed)."
    ),
    remedy=(
        "Add the mapping on the host (`ovs-vsctl set Open_vSwitch . "
        "external_ids:ovn-bridge-mappings=PHYSNET:BRIDGE,...`) and re-bind the "
        "port."
    ),
    applies_to=_VM_PORTS,
)

declare(
    "VD404",
    Severity.FAILURE,
    "binding does not fit the OVN chassis",
    summary=(
        "ML2/OVN: Nova would plug the VM in a way OVN does not wire on that "
        "chassis (vif_type, bridge_name, datapath_type)"
    ),
    why=(
        "The stored binding makes Nova plug the VM in a way OVN does not wire on this"
        " chassis: an ovs binding where the chassis needs vhostuser (netdev datapath "
        "with dpdkvhostuser) or the reverse; a bridge_name other than the chassis's "
        "OVN bridge (Chassis_Private external_ids neutron:ovn-bridge, else br-int); a"
        " datapath_type other than the chassis's."
    ),
    impact=(
        "At its next plug the VM's port lands on a bridge ovn-controller does not "
        "manage, or on the wrong datapath: no network on the port."
    ),
    remedy=(
        "Rewrite bridge_name/datapath_type as the OVN driver writes them for the "
        "chassis (`vifdoctor repair --code VD404 --ovn-nb-connection NB "
        "--ovn-sb-connection SB`); a vif_type that does not fit needs a re-bind "
        "through the API (`vifdoctor repair --os-cloud NAME --code VD404` with the "
        "same OVN connections). Then hard-reboot the VM so Nova plugs it again."
    ),
    applies_to=_VM_PORT_DETAILS,
    correction=ovn_details_correction,
)

declare(
    "VD405",
    Severity.WARNING,
    "ML2/OVS leftovers in an OVN binding",
    summary=(
        "ML2/OVN: ML2/OVS leftovers in the details (ovs_hybrid_plug true, "
        "port_filter not the OVN driver's)"
    ),
    why=(
        "The details still carry what the OVS driver wrote: ovs_hybrid_plug true "
        "(Nova plugs through a qbr bridge whose iptables rules no OVS agent "
        "maintains), or a port_filter other than the OVN driver's "
        "(enable_security_group for ovs, false for vhostuser). neutron's OVS -> OVN "
        "migration keeps ovs_hybrid_plug."
    ),
    impact=(
        "The VM keeps a useless qbr/qvb/qvo chain and stale neutron-openvswi-* "
        "chains; OVN's ACLs still filter on the qvo port. Nothing breaks now."
    ),
    remedy=(
        "Rewrite the details as the OVN driver writes them (`vifdoctor repair "
        "--code VD405` with the OVN connections), then re-plug the VM at a "
        "convenient time (hard reboot or migration)."
    ),
    applies_to=_VM_PORT_DETAILS,
    correction=ovn_details_correction,
)

declare(
    "VD406",
    Severity.FAILURE,
    "bound port without an LSP",
    summary="ML2/OVN: a bound port has no NB Logical_Switch_Port",
    why=(
        "A bound Neutron port has no Logical_Switch_Port in the Northbound database: "
        "deleted by hand, or a failed create that the maintenance worker (which "
        "compares revision numbers only) did not redo."
    ),
    impact=(
        "OVN knows nothing of the port: no ovn-controller claims it, the VM has no"
        " network on it and its security groups are not applied."
    ),
    remedy=(
        "Run neutron-ovn-db-sync-util in repair mode (the exact command is in the "
        "finding): it recreates missing LSPs."
    ),
    applies_to=Scope(OVN),
)

declare(
    "VD407",
    Severity.WARNING,
    "LSP without a Neutron port",
    summary=(
        "ML2/OVN: a Logical_Switch_Port on a neutron network has no Neutron port "
        "(provnet-* excepted)"
    ),
    why=(
        "A Logical_Switch_Port on a neutron-<network id> switch has no Neutron port "
        "of its name: added by hand, or left behind by a deleted port. The provnet-* "
        "localnet ports neutron makes for physical segments are not orphans."
    ),
    impact=(
        "It holds addresses (MAC/IP) that Neutron may hand out again, and an "
        "ovn-controller may claim it for an interface with that iface-id."
    ),
    remedy=(
        "Run neutron-ovn-db-sync-util in repair mode when the LSP has "
        "neutron:port_name; otherwise delete it by hand with ovn-nbctl lsp-del "
        "(the finding says which)."
    ),
    applies_to=Scope(OVN),
)

declare(
    "VD408",
    Severity.FAILURE,
    "requested-chassis is not the binding host",
    summary=(
        "ML2/OVN: the LSP's requested-chassis is not the binding host, outside a live migration"
    ),
    why=(
        "The LSP's options:requested-chassis names another host than the binding, "
        'outside a live migration (during one it is "src,dst" and the binding profile'
        " has migrating_to). Edited by hand, or a binding change whose NB update "
        "failed."
    ),
    impact=(
        "ovn-controller on the binding host refuses to claim the port; the VM on "
        "it has no network, or the port is claimed on the host requested-chassis "
        "names."
    ),
    remedy=(
        "Re-bind the port through the API (`vifdoctor repair --os-cloud NAME --code "
        "VD408` with the OVN connections, or binding:host_id to '' and back) so the "
        "driver rewrites the LSP."
    ),
    applies_to=_VM_PORTS,
)

declare(
    "VD409",
    Severity.FAILURE,
    "port claimed by another chassis",
    summary="ML2/OVN: the SB Port_Binding is claimed by another host's chassis",
    why=(
        "The SB Port_Binding's chassis is a chassis whose hostname is not the binding"
        " host: its traffic goes to another hypervisor. A live migration's "
        "destination claims as additional_chassis, which is no fault."
    ),
    impact=(
        "The VM on the binding host has no network on this port; another host's "
        "interface with the same iface-id gets its traffic."
    ),
    remedy=(
        "Find the interface with this iface-id on the claiming host (`ovs-vsctl "
        "--columns=name find Interface external_ids:iface-id=PORT`) and remove it,"
        " then check the port's requested-chassis (VD408)."
    ),
    applies_to=_VM_PORTS,
)

declare(
    "VD410",
    Severity.WARNING,
    "port status disagrees with the LSP",
    summary=(
        "ML2/OVN: port status ACTIVE with the LSP down, or DOWN with it up, "
        "outside a live migration"
    ),
    why=(
        "Neutron's port status is ACTIVE while the LSP is not up, or DOWN while it is"
        " up, outside a live migration. Neutron sets the status from OVN's up events;"
        " a missed event leaves them apart."
    ),
    impact=(
        "Builds and attaches wait for network-vif-plugged and time out; a port "
        "shown ACTIVE may have no working datapath."
    ),
    remedy=(
        "Check the port's claim (VD409) and the host's ovn-controller; a restart "
        "of the neutron API resets port status from the LSPs."
    ),
    applies_to=_VM_PORTS,
)


@dataclass(frozen=True)
class OvnContext:
    """What the OVN driver's output depends on besides the chassis."""

    enable_security_group: bool = True  # [securitygroup] enable_security_group
    vhost_sock_dir: str = "/var/run/openvswitch"  # [ovn] vhost_sock_dir
    ovs_create_tap: bool = True  # [ovn] ovs_create_tap
    nova_default_bridge: str = DEFAULT_OVN_BRIDGE  # nova [neutron] ovs_bridge, no bridge_name
    config_files: tuple[str, ...] = ()  # for the db-sync command a remedy prints


# ---------------------------------------------------------------------- which bindings


def is_ovn_binding(
    b: Binding, host_agents: Sequence[Agent], view: OvnView | None, live_ovs_anywhere: bool
) -> bool:
    """Whether OVN, not an OVS agent, serves this binding.

    Bound by the ``ovn`` driver; or, with OVN read, an ``ovs``/``vhostuser`` binding on a
    host with no live OVS agent, when that host has a chassis or the cloud has no live
    OVS agent at all: the migration keeps the ``openvswitch`` binding levels, so a
    migrated port still names the old driver.
    """
    driver = (b.driver or "").strip()
    if driver == OVN_DRIVER:
        return True
    if view is None or driver not in ("", OVS_DRIVER):
        return False
    if b.vif_type not in (VIF_OVS, VIF_VHOSTUSER):
        return False
    if any(a.agent_type == AGENT_OVS and a.alive for a in host_agents):
        return False
    return bool(view.by_host.get(b.host)) or not live_ovs_anywhere


# ---------------------------------------------------------------------- expected state


def expected_vif_type(chassis: OvnChassis, vnic_type: str) -> str:
    """``bind_port``: vhostuser on a netdev chassis with dpdkvhostuser, agilio_ovs for
    virtio-forwarder, else ovs."""
    if chassis.datapath_type == DATAPATH_NETDEV and "dpdkvhostuser" in chassis.iface_types:
        return VIF_VHOSTUSER
    if vnic_type == VNIC_VIRTIO_FORWARDER:
        return VIF_AGILIO
    return VIF_OVS


def vhu_socket(sock_dir: str, port_id: str) -> str:
    """``ovn_vhu_sockpath``: <dir>/vhu<port id>, the name cut to 14 characters."""
    return f"{sock_dir.rstrip('/')}/{('vhu' + port_id)[:14]}"


def expected_details(b: Binding, chassis: OvnChassis, vif_type: str, ctx: OvnContext) -> dict:
    """The vif_details the OVN driver writes for this port on this chassis."""
    details: dict
    if vif_type == VIF_VHOSTUSER:
        details = {
            "port_filter": False,
            "vhostuser_mode": "server",
            "vhostuser_ovs_plug": True,
            "connectivity": "l2",
            "vhostuser_socket": vhu_socket(ctx.vhost_sock_dir, b.port_id),
        }
    elif vif_type == VIF_AGILIO:
        details = {
            "port_filter": ctx.enable_security_group,
            "connectivity": "l2",
            "vhostuser_socket": vhu_socket(ctx.vhost_sock_dir, b.port_id),
            "vhostuser_mode": "client",
        }
    else:
        details = {
            "port_filter": ctx.enable_security_group,
            "connectivity": "l2",
            "ovs_create_tap": ctx.ovs_create_tap,
        }
    details.update({"bridge_name": chassis.ovn_bridge, "datapath_type": chassis.datapath_type})
    return details


def _dp(value: object) -> str:
    """os-vif's reading of a datapath type: unset means system."""
    return str(value) if value else DATAPATH_SYSTEM


def migrating_to(profile: dict) -> str:
    value = profile.get("migrating_to")
    return value if isinstance(value, str) else ""


# ---------------------------------------------------------------------- the judgement


@dataclass
class OvnJudgement:
    category: str
    findings: list[Finding] = field(default_factory=list)
    chassis: OvnChassis | None = None
    leftovers: list[str] = field(default_factory=list)  # ML2/OVS remains (migration view)


def _finding(
    code: str,
    b: Binding,
    message: str,
    chassis: OvnChassis | None = None,
    *,
    remedy: str | None = None,
    extra: dict | None = None,
    **fields: Any,
) -> Finding:
    """A finding that names the port, host, chassis and instance."""
    f = new_finding(code, b, message, **fields)
    if remedy:
        f.remedy = remedy
    f.extra = {
        "chassis": chassis.name if chassis else "",
        "instance": b.device_id if b.is_compute_port else "",
        **(extra or {}),
    }
    return f


def judge_ovn_binding(
    b: Binding,
    view: OvnView,
    ctx: RuleContext,
    octx: OvnContext,
    *,
    segment: Segment | None = None,
    port_status: str | None = None,
    chassis_only: bool = False,
) -> OvnJudgement:
    """Judge one binding OVN serves: the generic checks, then VD401-VD410.

    ``chassis_only``: the view holds only the agents Neutron's API lists (no NB/SB):
    VD401-VD403 are judged, the rest needs the databases.
    """
    base: Judgement = judge_binding(b, [], ctx)
    findings = [f for f in base.findings if f.code in GENERIC_CODES]
    details = parse_json_column(b.vif_details)
    live = b.status in (None, "ACTIVE")
    bound = bool(b.host) and b.vif_type not in (VIF_UNBOUND, VIF_BINDING_FAILED, "")
    if not details.ok or not live:
        return OvnJudgement(base.category, findings)
    lsp = view.ports.get(b.port_id)
    if bound and lsp is None and b.device_owner != FLOATINGIP_OWNER and not chassis_only:
        findings.append(
            _finding(
                "VD406",
                b,
                f"port {b.port_id} ({b.device_owner or 'no device_owner'}) is bound "
                f"to {b.host} but NB has no Logical_Switch_Port named after it",
                remedy=sync_remedy("VD406", [b.port_id], octx),
            )
        )
    if not b.is_compute_port:
        return OvnJudgement(base.category, findings)
    if not bound or any(f.code in ("VD105", "VD106", "VD112") for f in findings):
        return OvnJudgement(JUDGED, findings)  # the generic rules judged it
    if b.vnic_type not in (VNIC_NORMAL, VNIC_VIRTIO_FORWARDER):
        return OvnJudgement(f"OVN vnic_type {b.vnic_type} (no plug rule)", findings)

    profile = parse_json_column(b.profile).as_dict()
    dst = migrating_to(profile)
    chassis = _judge_chassis(b, view, segment, findings)
    stored = details.as_dict()
    if chassis is not None and not chassis_only:
        findings.extend(_judge_details(b, stored, chassis, octx, dst))
    if lsp is not None and not chassis_only:
        findings.extend(_judge_lsp(b, lsp, view, dst, port_status, chassis))
    return OvnJudgement(JUDGED, findings, chassis, migration_leftovers(b, stored))


def _judge_chassis(
    b: Binding, view: OvnView, segment: Segment | None, findings: list[Finding]
) -> OvnChassis | None:
    """VD401-VD403: the chassis neutron would bind this host's ports to, if one."""
    agents = view.agents_on(b.host)
    if len(agents) != 1:
        if agents:
            message = (
                f"{len(agents)} OVN chassis carry hostname {b.host} "
                f"({', '.join(sorted(c.name for c in agents))}): neutron binds to "
                "whichever its agent cache lists first"
            )
        else:
            message = f"no OVN chassis has hostname {b.host}" + _near_misses(b.host, view)
        findings.append(
            _finding("VD401", b, message, extra={"candidates": [c.name for c in agents]})
        )
        return None
    chassis = agents[0]
    if not chassis.alive:
        findings.append(
            _finding(
                "VD402",
                b,
                f"chassis {chassis.name} of {b.host} is dead: {chassis.liveness}",
                chassis,
            )
        )
    if segment is not None and segment.network_type in ("flat", "vlan"):
        physnet = segment.physical_network or ""
        if chassis.mappings_error or physnet not in chassis.physnets:
            mappings = chassis.bridge_mappings or "(none)"
            why = (
                f"cannot be parsed ({chassis.mappings_error})"
                if chassis.mappings_error
                else f"has no {physnet!r}"
            )
            findings.append(
                _finding(
                    "VD403",
                    b,
                    f"the port's {segment.network_type} segment is on physical "
                    f"network {physnet!r}, but chassis {chassis.name}'s ovn-bridge-mappings "
                    f"{mappings!r} {why}",
                    chassis,
                )
            )
    return chassis


def _near_misses(host: str, view: OvnView) -> str:
    """Chassis that may be this host under another name (FQDN vs short, renamed)."""
    short = host.split(".", 1)[0]
    near = sorted(
        {
            c.hostname
            for c in view.chassis
            if c.hostname != host and c.hostname.split(".", 1)[0] == short
        }
    )
    hidden = [c.name for c in view.without_agent_on(host)]
    text = ""
    if near:
        text += f"; chassis with a similar hostname: {', '.join(near)} (renamed host?)"
    if hidden:
        text += (
            f"; chassis {', '.join(hidden)} has this hostname but no Chassis_Private "
            "row, so neutron lists no agent for it"
        )
    return text


def _judge_details(
    b: Binding, stored: dict, chassis: OvnChassis, octx: OvnContext, dst: str = ""
) -> list[Finding]:
    """VD404 (Nova plugs what OVN does not wire here) and VD405 (ML2/OVS leftovers).

    ``dst``: a live migration's destination; said in ``extra`` (the remediation waits for
    it and the repair leaves such a port alone)."""
    moving = {"migrating_to": dst} if dst else None
    want_type = expected_vif_type(chassis, b.vnic_type)
    want = expected_details(b, chassis, want_type, octx)
    fields: dict[str, Any] = {
        "stored_details": stored if b.vif_details else "",
        "expected_details": want,
    }
    out: list[Finding] = []
    wrong: list[str] = []
    if b.vif_type != want_type and {b.vif_type, want_type} <= {VIF_OVS, VIF_VHOSTUSER}:
        wrong.append(
            f"vif_type {b.vif_type}, but chassis {chassis.name} needs {want_type} "
            f"(datapath-type {chassis.datapath_type or '(unset)'}, iface-types "
            f"{','.join(chassis.iface_types) or '(none)'})"
        )
    bridge = stored.get("bridge_name") or octx.nova_default_bridge
    if bridge != chassis.ovn_bridge:
        shown = stored.get("bridge_name") or f"(missing: Nova uses {octx.nova_default_bridge})"
        wrong.append(
            f"bridge_name {shown}, but ovn-controller on {chassis.name} uses {chassis.ovn_bridge}"
        )
    if _dp(stored.get("datapath_type")) != _dp(chassis.datapath_type):
        wrong.append(
            f"datapath_type {stored.get('datapath_type') or '(missing: system)'}, "
            f"but chassis {chassis.name} runs {_dp(chassis.datapath_type)}"
        )
    same_type = b.vif_type == want_type
    if wrong:
        fix = ovn_details_correction(stored, want) if same_type else None
        out.append(
            _finding("VD404", b, "; ".join(wrong), chassis, correction=fix, extra=moving, **fields)
        )
    leftovers: list[str] = []
    if stored.get("ovs_hybrid_plug"):
        leftovers.append(
            "ovs_hybrid_plug is true: Nova plugs through a qbr bridge whose "
            "iptables rules no OVS agent maintains any more"
        )
    if same_type and stored.get("port_filter") != want["port_filter"]:
        key = stored.get("port_filter", "(missing)")
        leftovers.append(
            f"port_filter {key}, the OVN driver writes {want['port_filter']} for {want_type}"
        )
    if leftovers:
        fix = ovn_details_correction(stored, want) if same_type else None
        out.append(
            _finding(
                "VD405", b, "; ".join(leftovers), chassis, correction=fix, extra=moving, **fields
            )
        )
    return out


def _judge_lsp(
    b: Binding,
    lsp: OvnPort,
    view: OvnView,
    dst: str,
    port_status: str | None,
    chassis: OvnChassis | None,
) -> list[Finding]:
    """VD408-VD410: requested-chassis, the SB claim, and the up state vs port status."""
    out: list[Finding] = []
    requested = [r for r in lsp.requested_chassis.split(",") if r]

    def is_host(name: str, host: str) -> bool:  # OVN accepts a hostname or a chassis name
        ch = view.by_name.get(name)
        return name == host or (ch is not None and ch.hostname == host)

    fits = len(requested) == 1 and is_host(requested[0], b.host)
    if dst and not fits:
        fits = len(requested) == 2 and is_host(requested[0], b.host) and is_host(requested[1], dst)
    if not fits:
        expect = f"{b.host},{dst}" if dst else b.host
        out.append(
            _finding(
                "VD408",
                b,
                f"LSP options:requested-chassis is "
                f"{lsp.requested_chassis or '(unset)'!s}, the binding says {expect}"
                + ("" if dst else " and no live migration is under way"),
                chassis,
                extra={"requested_chassis": lsp.requested_chassis},
            )
        )
    if lsp.claimed_by is not None:
        owner = view.by_name.get(lsp.claimed_by)
        owner_host = owner.hostname if owner else ""
        if owner_host != b.host and not (dst and owner_host == dst):
            out.append(
                _finding(
                    "VD409",
                    b,
                    f"SB Port_Binding is claimed by chassis {lsp.claimed_by} "
                    f"(hostname {owner_host or 'unknown'}), not by {b.host}: its traffic goes "
                    "there",
                    chassis,
                    extra={"claimed_by": lsp.claimed_by},
                )
            )
    if port_status in ("ACTIVE", "DOWN") and lsp.up is not None and not dst:
        up = bool(lsp.up)
        if (port_status == "ACTIVE") != up:
            out.append(
                _finding(
                    "VD410",
                    b,
                    f"Neutron says {port_status}, the LSP is {'up' if up else 'down'}",
                    chassis,
                    extra={"lsp_up": up},
                )
            )
    return out


def unclaimed_findings(
    instance: Instance | None, bindings: Sequence[Binding], view: OvnView
) -> list[Finding]:
    """With Nova: a VM port of an instance whose VIFs exist on its host (running, paused,
    suspended) must be claimed there; one no chassis claims is VD409, with the instance."""
    if instance is None or instance.deleted or not instance.plugged:
        return []
    out = []
    for b in bindings:
        lsp = view.ports.get(b.port_id)
        if b.status not in (None, "ACTIVE") or lsp is None or lsp.claimed_by is not None:
            continue
        f = _finding(
            "VD409",
            b,
            f"no chassis claims the port (SB Port_Binding.chassis is "
            f"empty) while instance {instance.uuid} is "
            f"{'running' if instance.power_state == 1 else 'plugged'} on "
            f"{instance.host or '(no host)'}: it has no network on this port",
            extra={"claimed_by": "", "instance_host": instance.host},
        )
        f.instance = instance.as_dict()
        out.append(f)
    return out


# ---------------------------------------------------------------------- orphans, remedies


def is_orphan_candidate(lsp: OvnPort) -> bool:
    """An LSP on a neutron network's switch that should have a Neutron port of its name.

    Neutron's own ports without one (the ``provnet-*`` localnet ports of physical
    segments) are not orphans.
    """
    if not lsp.switch.startswith(OVN_SWITCH_PREFIX):
        return False
    return not (lsp.name.startswith(PROVNET_PREFIX) or lsp.type == "localnet")


def orphan_finding(lsp: OvnPort, octx: OvnContext, bound_elsewhere: str | None = None) -> Finding:
    """VD407 for an LSP that has no Neutron port."""
    network = lsp.switch[len(OVN_SWITCH_PREFIX) :]
    how = (
        "neutron-ovn-db-sync-util can delete it (it has neutron:port_name)"
        if lsp.has_port_name
        else "it lacks neutron:port_name, so neutron-ovn-db-sync-util never sees it"
    )
    f = declared_finding(
        "VD407",
        f"Logical_Switch_Port {lsp.name} on {lsp.switch} has no Neutron port; {how}",
        port_id=lsp.name,
        host=lsp.host_id,
        network_id=network,
        device_owner=lsp.device_owner,
        extra={
            "chassis": lsp.claimed_by or "",
            "instance": "",
            "lsp_type": lsp.type,
            "requested_chassis": lsp.requested_chassis,
            "has_port_name": lsp.has_port_name,
        },
    )
    f.remedy = sync_remedy("VD407", [lsp.name], octx, lsp=lsp)
    return f


def sync_command(octx: OvnContext) -> str:
    """The exact neutron-ovn-db-sync-util run that repairs NB from Neutron, quoted."""
    files = octx.config_files or DEFAULT_SYNC_CONFIG
    args = [SYNC_UTIL]
    for f in files:
        args += ["--config-file", f]
    args += ["--ovn-neutron_sync_mode", "repair"]
    return " ".join(shlex.quote(a) for a in args)


def sync_remedy(code: str, ports: list[str], octx: OvnContext, lsp: OvnPort | None = None) -> str:
    listed = ", ".join(ports)
    if code == "VD407" and lsp is not None and not lsp.has_port_name:
        return (
            f"Check nothing uses it, then delete it by hand: "
            f"`ovn-nbctl lsp-del {shlex.quote(lsp.name)}` (ports: {listed}); "
            f"`{sync_command(octx)}` does not see it."
        )
    verb = "recreates the missing LSP of" if code == "VD406" else "deletes the orphan LSP"
    return (
        f"Run `{sync_command(octx)}` on a neutron server host: it {verb} {listed} "
        "(it syncs the whole NB, not just these ports). The port comes back down "
        "until ovn-controller claims it again."
    )


# ---------------------------------------------------------------------- migration view


def migration_leftovers(b: Binding, stored: dict) -> list[str]:
    """What is left of ML2/OVS on one VM port after an OVS -> OVN migration."""
    out = []
    if stored.get("ovs_hybrid_plug"):
        out.append("hybrid-plugged")
    if (b.driver or "").strip() == OVS_DRIVER:
        out.append("levels name openvswitch")
    if b.vif_type == VIF_OVS and "bridge_name" not in stored:
        out.append("no bridge_name")
    return out


@dataclass
class MigrationTally:
    """Per host, what is left of ML2/OVS; and how many VM ports are fully on OVN."""

    hosts: dict[str, dict] = field(default_factory=dict)
    vm_ports: int = 0
    fully_on_ovn: int = 0

    def _host(self, host: str) -> dict:
        return self.hosts.setdefault(
            host,
            {
                "vm_ports": 0,
                "fully_on_ovn": 0,
                "hybrid-plugged": 0,
                "levels name openvswitch": 0,
                "no bridge_name": 0,
                "dead Open vSwitch agents": 0,
                "trunk bridges": 0,
            },
        )

    def add(self, b: Binding, judged: OvnJudgement) -> bool:
        """Count one judged binding; whether it was counted fully on OVN."""
        if not b.is_compute_port or b.status not in (None, "ACTIVE") or judged.category != JUDGED:
            return False
        row = self._host(b.host)
        row["vm_ports"] += 1
        self.vm_ports += 1
        for item in judged.leftovers:
            row[item] += 1
        if judged.leftovers or judged.findings:
            return False
        row["fully_on_ovn"] += 1
        self.fully_on_ovn += 1
        return True

    def take_back(self, host: str) -> None:
        """One port of ``host`` counted fully on OVN has a finding after all (a host scan's)."""
        self.hosts[host]["fully_on_ovn"] -= 1
        self.fully_on_ovn -= 1

    def add_agents(self, agents: dict[str, list[Agent]]) -> None:
        for host, rows in agents.items():
            dead = sum(1 for a in rows if a.agent_type == AGENT_OVS and not a.alive)
            if dead:
                self._host(host)["dead Open vSwitch agents"] += dead

    def add_trunk_bridges(self, host: str, count: int) -> None:
        if count:
            self._host(host)["trunk bridges"] += count

    def line(self) -> str:
        return f"{self.fully_on_ovn} of {self.vm_ports} VM ports fully on OVN"

    def as_dict(self) -> dict:
        return {
            "hosts": {h: self.hosts[h] for h in sorted(self.hosts)},
            "vm_ports": self.vm_ports,
            "fully_on_ovn": self.fully_on_ovn,
            "summary": self.line(),
        }


def corrected(stored: dict, correction: dict | None) -> dict:
    """The details after a correction (the repair's new value)."""
    return apply_correction(stored, correction)
