"""Every finding code vifdoctor can report: what it means, why, and what to do.

Codes are stable: scripts and runbooks may key on them. ``vifdoctor explain
CODE`` prints an entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from vifdoctor.model import Severity


@dataclass(frozen=True)
class CodeInfo:
    code: str
    severity: Severity
    title: str
    why: str
    impact: str
    remedy: str
    repairable: bool = False  # the database repair can correct it
    repair_by_default: bool = False  # ...without being named with --code


_F, _W, _I = Severity.FAILURE, Severity.WARNING, Severity.INFO

CATALOG: dict[str, CodeInfo] = {
    c.code: c
    for c in (
        CodeInfo(
            "VD101",
            _F,
            "hybrid plug missing",
            "The host's OVS agent filters traffic with the iptables_hybrid firewall, which "
            "matches the VM's tap on a qbr Linux bridge. The stored vif_details do not make "
            "Nova plug through that bridge (ovs_hybrid_plug is missing, null or false), so "
            "Nova puts the tap straight on the integration bridge. This is the Havana -> "
            "Icehouse incident: ports bound before vif_details existed kept empty details.",
            "Security groups are not enforced once the VM is plugged this way; a running VM "
            "booted with the old hybrid wiring keeps it until its next stop/start or hard "
            "reboot, which re-plugs it direct and can leave it without network.",
            "Set ovs_hybrid_plug (and port_filter) as the mechanism driver writes them for "
            "this host (`vifdoctor repair`), then hard-reboot or stop/start each VM whose "
            "live wiring must change.",
            repairable=True,
            repair_by_default=True,
        ),
        CodeInfo(
            "VD102",
            _W,
            "hybrid plug unexpected",
            "The host's agent uses a native firewall (openvswitch or noop) that needs no qbr "
            "bridge, but Nova will plug this port hybrid: typically left over from an "
            "iptables_hybrid -> openvswitch firewall migration, since ML2 never rebinds a "
            "bound port on its own.",
            "The VM gets a useless qbr/qvb/qvo chain: extra latency and devices; the "
            "openvswitch firewall still filters on the qvo port. Nothing breaks now.",
            "Correct ovs_hybrid_plug to false (`vifdoctor repair --code VD102`) and re-plug "
            "the VM at a convenient time (hard reboot, stop/start or a live migration).",
            repairable=True,
        ),
        CodeInfo(
            "VD103",
            _W,
            "port filter off",
            "port_filter is missing or false although security groups are enabled and the "
            "host's agent enforces them. The mechanism driver writes port_filter = "
            "[securitygroup] enable_security_group; a missing key marks a binding written "
            "by an old migration or by hand.",
            "Legacy Nova (up to Train) with a non-Noop firewall_driver treats the port as "
            "unfiltered and plugs it hybrid with its own iptables rules; API clients and "
            "os-vif see traffic filtering as off.",
            "Set port_filter as the mechanism driver writes it (`vifdoctor repair`).",
            repairable=True,
            repair_by_default=True,
        ),
        CodeInfo(
            "VD104",
            _F,
            "malformed binding column",
            "vif_details or profile is not a JSON object: truncated at the column's 4095 "
            "characters, hand-edited text, a list or a scalar. Neutron logs an error and "
            "hands Nova {} for text that does not parse, and the bare value otherwise.",
            "Nova plugs the port with no details at all (direct, no port filter), or fails "
            "to plug it when the value is not an object.",
            "Inspect the row by hand; vifdoctor never rewrites a malformed row. Re-binding "
            "the port through the API (binding:host_id to '' and back) makes the mechanism "
            "driver write fresh details.",
        ),
        CodeInfo(
            "VD105",
            _F,
            "binding failed",
            "No mechanism driver could bind this VM port on its host (vif_type "
            "binding_failed): no live agent of the right type, no segment the agent can "
            "reach, or a vnic_type no driver supports.",
            "Nova refuses to plug the port: the VM has no network on this port, and a boot, "
            "start or migration that needs it fails.",
            "Fix the agent or mappings on the host (see VD107/VD108), then re-bind the port "
            "(binding:host_id to '' and back, or re-attach the interface).",
        ),
        CodeInfo(
            "VD106",
            _W,
            "compute port unbound",
            "A VM port is not bound to any host (vif_type unbound, or an empty host).",
            "Nova cannot plug it; the instance shows the port but has no connectivity "
            "through it until it is bound.",
            "Check the instance's host and re-bind the port by setting binding:host_id to "
            "the instance's host.",
        ),
        CodeInfo(
            "VD107",
            _F,
            "no live agent",
            "The bound host has no agent of the type the binding needs, or that agent is "
            "dead (no heartbeat within agent_down_time) or administratively down.",
            "The port's flows and firewall are not maintained; any re-bind on this host "
            "(migration, host update) ends in binding_failed.",
            "Start or repair the agent on the host (`openstack network agent list --host "
            "HOST`), or move the VM.",
        ),
        CodeInfo(
            "VD108",
            _F,
            "vif type mismatch",
            "The binding's vif_type is not what any agent on the host serves (for example "
            "vif_type bridge on a host that only runs the Open vSwitch agent): the host's "
            "L2 agent changed since the port was bound.",
            "Nova plugs the VIF for a backend that no longer runs on the host: the VM has "
            "no connectivity through this port after its next plug.",
            "Re-bind the port so the host's current mechanism driver binds it "
            "(binding:host_id to '' and back), then re-plug the VM.",
        ),
        CodeInfo(
            "VD109",
            _W,
            "stale inactive binding",
            "An INACTIVE binding row sits beside the port's ACTIVE one: the remains of a "
            "live migration that failed or was aborted (Ocata+ multiple port bindings).",
            "The next live migration to that host can fail, and tools that read the first "
            "binding row may read the wrong one.",
            "If no migration is under way, delete it (`neutron-remove-duplicated-port-"
            "bindings`, or the port bindings API).",
        ),
        CodeInfo(
            "VD110",
            _W,
            "datapath mismatch",
            "datapath_type in the details differs from the one the host's OVS agent "
            "reports, or an ovs binding sits on a host whose agent would bind vhostuser "
            "(netdev datapath with DPDK vhost-user ports).",
            "Nova/os-vif create the port for the wrong datapath: on a DPDK host a system "
            "datapath port does not pass traffic.",
            "Correct datapath_type (`vifdoctor repair --code VD110`) or re-bind the port so "
            "the mechanism driver writes the right vif_type, then re-plug the VM.",
            repairable=True,
        ),
        CodeInfo(
            "VD111",
            _W,
            "agent configurations unreadable",
            "The agent's configurations column is not a JSON object. Neutron reads it as {} "
            "and binds as if the agent reported nothing (no bridge mappings, no "
            "ovs_hybrid_plug).",
            "New bindings on this host can fail or get the wrong details; vifdoctor falls "
            "back to the firewall-driver assumption for this host.",
            "Restart the agent so its next report rewrites the column.",
        ),
        CodeInfo(
            "VD112",
            _F,
            "vif type Nova cannot plug",
            "A VM port is bound with a vif_type that Nova does not know (none of "
            "nova.network.model's VIF_TYPE_*): a vendor driver's type on a Nova without its "
            "plugin, a hand edit, or a distributed (DVR) binding on a VM port.",
            "Nova's libvirt driver raises 'Unexpected vif_type' when it plugs the VM: the "
            "next start, hard reboot or migration fails.",
            "Re-bind the port with a mechanism driver Nova supports on that host "
            "(binding:host_id to '' and back), or install the matching os-vif plugin.",
        ),
        CodeInfo(
            "VD201",
            _W,
            "stale Nova cache",
            "The VIF in Nova's instance_info_caches.network_info differs from what Nova would "
            "build from Neutron's port now (details, type, devname or ovs_interfaceid): "
            "expected right after a database repair, since Neutron sends Nova no event for it.",
            "Nova keeps acting on the old details (soft reboot, interface list, live "
            "migration) until it refreshes the cache; a start or hard reboot re-reads the "
            "port and re-plugs it.",
            "Refresh the cache: `nova refresh-network UUID` (a network-changed external "
            "event), or hard reboot the VM when its plug must change anyway.",
        ),
        CodeInfo(
            "VD202",
            _F,
            "host mismatch",
            "The port is bound to a host other than the instance's host, and no migration, "
            "resize, rebuild or unshelve is under way: a move that failed half-way.",
            "The port's flows and firewall are set up on the wrong host: the VM has no "
            "network on this port, and its next plug binds nothing on its own host.",
            "Re-bind the port to the instance's host (`openstack port set --host HOST PORT`, "
            "admin), then hard reboot the VM.",
        ),
        CodeInfo(
            "VD203",
            _W,
            "cache and Neutron disagree on ports",
            "A port attached to the instance in Neutron is missing from Nova's cache, or a "
            "cached port is not attached to the instance in Neutron.",
            "Nova does not plug a port it does not know at the next start, and keeps a "
            "detached port in its view (metadata, interface list).",
            "`nova refresh-network UUID`; if the cache stays wrong, detach and re-attach the "
            "interface (`openstack server remove/add port`).",
        ),
        CodeInfo(
            "VD204",
            _W,
            "orphan binding",
            "A compute port is bound to a host for an instance that is deleted or that no "
            "Nova cell read knows (only meaningful when every cell is given).",
            "The port holds an IP and flows on the host for a VM that is gone.",
            "Check the instance (`openstack server show UUID --all-projects`); if it is gone, "
            "delete the port or unbind it (`openstack port set --device-id '' --device-owner "
            "'' --host ''`).",
        ),
        CodeInfo(
            "VD205",
            _F,
            "malformed Nova cache",
            "instance_info_caches.network_info is not a JSON list of VIF objects.",
            "Nova cannot read the instance's network info: reboots, migrations and "
            "interface operations fail or act on nothing.",
            "`nova refresh-network UUID` rebuilds the cache from Neutron.",
        ),
        CodeInfo(
            "VD206",
            _W,
            "binding left by a failed move",
            "An INACTIVE binding row of a VM port whose instance has no migration in "
            "progress (Nova's migration records, judged with nova's own terminal statuses): "
            "a live migration that failed or was aborted left a bound row on the "
            "destination, or a finished move whose cleanup failed left an `unbound` row "
            "with empty details on the source.",
            "The port cannot be live-migrated to that host again (Neutron refuses a second "
            "binding for the same host), and tools that read the first binding row may "
            "read this one.",
            "Delete the row and its binding levels (`vifdoctor repair --code VD206 "
            "--apply`: backed up, guarded on the row still being INACTIVE, Nova re-checked "
            "before each batch), or `DELETE /v2.0/ports/PORT/bindings/HOST`.",
            repairable=True,
        ),
        CodeInfo(
            "VD207",
            _F,
            "move finished half-way",
            "The instance's last migration has completed (completed, done or confirmed), "
            "but instances.host still names its source_compute; or the instance is on the "
            "destination while its port's ACTIVE binding is still on the source.",
            "Nova acts on the wrong host: reboots, further moves and deletes go to a host "
            "where the VM is not, or the VM on the destination has no network on this port.",
            "Nova owns instances.host: vifdoctor never writes it. Check where the domain "
            "runs first (`virsh domstate UUID` on both hosts), then review and run the "
            "scoped statement the finding gives (its extra.statement), and afterwards "
            "`nova-manage placement audit --verbose`; for a binding left on the source, "
            "`openstack port set --host DEST PORT`.",
        ),
        CodeInfo(
            "VD208",
            _W,
            "move stuck",
            "A live migration, cold migration, evacuation or resize has not reached a "
            "terminal status within --stuck-after (default 6 h) of its creation. A resize "
            "or cold migration in `finished` is awaiting confirmation, not stuck.",
            "The instance's ports stay bound for two hosts (an INACTIVE row or "
            "migrating_to), the instance cannot be moved again, and the move's resources "
            "stay claimed on both hosts.",
            "Look at the migration (`openstack server migration list --server UUID`, "
            "nova-compute logs on both hosts); abort a live migration "
            "(`openstack server migration abort`) or reset the instance once nothing "
            "runs it. vifdoctor never removes a moving port's binding.",
        ),
        CodeInfo(
            "VD301",
            _F,
            "unprotected now",
            "The host scan shows the VM's tap (or os-vif port) straight on the integration "
            "bridge while the host's firewall (iptables_hybrid) needs the hybrid qbr bridge.",
            "Security groups are not enforced on this VM right now: its traffic passes "
            "unfiltered. The most urgent finding.",
            "Repair the binding if it is wrong (`vifdoctor repair`), then hard reboot or "
            "stop/start the VM so Nova re-plugs it hybrid.",
        ),
        CodeInfo(
            "VD302",
            _F,
            "breaks at next re-plug",
            "The VM is wired hybrid today (it was plugged before the details drifted), but "
            "the stored details make Nova plug it direct at its next stop/start, hard reboot "
            "or migration.",
            "Fine until the next re-plug; then security groups stop working and the VM can "
            "lose its network: the incident's failure mode.",
            "Repair the binding now (`vifdoctor repair`); the VM itself needs no reboot.",
        ),
        CodeInfo(
            "VD303",
            _W,
            "broken hybrid plumbing",
            "Part of the hybrid chain is missing or wrong: a qbr without its qvb/qvo, a qvo "
            "missing from the integration bridge, or a qvo carrying another port's iface-id. "
            "os-vif leaves this after a half-done plug and does not redo it.",
            "The VM has no network on this port, or the agent wires another port's flows to "
            "it.",
            "Delete the stale qbr/qvb/qvo devices on the host, then hard reboot the VM so "
            "Nova plugs it afresh.",
        ),
        CodeInfo(
            "VD304",
            _W,
            "unknown or foreign OVS port",
            "An OVS interface on this host carries an iface-id that Neutron does not know, "
            "or that Neutron binds to another host.",
            "The agent keeps flows for a port that is not here (a leftover of a deleted port "
            "or of a failed migration); a duplicate iface-id confuses the agent.",
            "Check the port (`openstack port show ID`), then delete the OVS port "
            "(`ovs-vsctl del-port br-int NAME`) if nothing uses it.",
        ),
        CodeInfo(
            "VD305",
            _I,
            "leftover devices",
            "tap/qbr/qvb/qvo devices that belong to no running domain and to no port bound "
            "to this host.",
            "Harmless clutter, but they can collide with a new plug of the same port.",
            "Remove them (`ip link delete NAME`, `ovs-vsctl del-port NAME`).",
        ),
        CodeInfo(
            "VD306",
            _W,
            "domain interface not bound here",
            "A libvirt domain has an interface for a port that Neutron does not bind to this "
            "host: a failed migration or a port moved underneath the VM.",
            "The VM's interface is not served by this host's agent: no network on it.",
            "Re-bind the port to this host or migrate the VM; then hard reboot it.",
        ),
        CodeInfo(
            "VD307",
            _F,
            "security-group chains missing",
            "The port is wired hybrid on an iptables_hybrid host, but iptables has no neutron "
            "chains for it: the agent never applied its security groups.",
            "The VM's traffic is not filtered although the wiring is right.",
            "Restart the OVS agent on the host (full resync) and check its log for the port.",
        ),
    )
}


def lookup(code: str) -> CodeInfo | None:
    return CATALOG.get(code.strip().upper())


def repairable_by_default() -> frozenset[str]:
    return frozenset(c.code for c in CATALOG.values() if c.repair_by_default)


def repairable() -> frozenset[str]:
    return frozenset(c.code for c in CATALOG.values() if c.repairable)
