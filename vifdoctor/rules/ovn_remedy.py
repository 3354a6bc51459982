"""The OVN steps of an instance's remediation (VD401-VD406, VD408-VD415), after Nova's.

What fixes each, as neutron 29.0.0 and OVN do it:

* the details (VD404, VD405): the database repair rewrites them as the OVN driver would;
  a re-bind through the API has the driver itself write them and the LSP (a vif_type
  that does not fit the chassis needs that). Either way Nova only follows at the next
  plug: a hard reboot (it re-reads the port and plugs again), or a live migration (the
  destination binding is written by the OVN driver and Nova plugs from it);
* requested-chassis (VD408): any update of the port makes ``update_port_postcommit``
  rewrite the LSP's options from the binding host, so a re-bind through the API;
* the claim (VD409): only an ovn-controller claims; with requested-chassis right, the
  other host's controller releases it once its interface with the port's iface-id is
  gone, and the binding host's controller claims it when the VM's interface is plugged
  again (hard reboot);
* a missing LSP (VD406): ``neutron-ovn-db-sync-util ... repair`` recreates it; the host's
  controller claims it while the VM's interface is there;
* the chassis (VD401-VD403): on the host, then the port is re-bound;
* the status (VD410): the claim first; a restart of neutron's API resets it from the LSPs;
* the host's wiring (VD412-VD415, from its host-scan report): a missing interface or a qbr
  chain goes at the next plug; a second interface with the port's iface-id is deleted by
  hand; a port without ``ovn-installed`` waits on the host's ovn-controller. The
  host-wide VD411 (system-id) and VD416 (stale chains) belong to no instance: their
  remedy is in ``explain``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vifdoctor.model import Finding
from vifdoctor.rules.nova import InstanceView, Step, remediation
from vifdoctor.shell import command

OVN_DETAIL_CODES = ("VD404", "VD405")


@dataclass(frozen=True)
class OvnRemedy:
    """What the OVN steps' commands depend on, besides the findings."""

    sync_command: str = ""  # neutron-ovn-db-sync-util ... repair, quoted (VD406)
    api: bool = False  # the audit read Neutron's API: vifdoctor can re-bind through it
    cloud: str | None = None  # its clouds.yaml entry; None: the OS_* environment


def instance_steps(
    view: InstanceView, findings: Sequence[Finding], ovn: OvnRemedy | None = None
) -> list[Step]:
    """Nova's remediation, with the OVN steps merged in, in the order to do them."""
    steps = remediation(view, findings)
    inst = view.instance
    if inst is None or inst.deleted or any(s.action == "check-id" for s in steps):
        return steps
    ours = [f for f in findings if f.code.startswith("VD4") and f.code != "VD407"]
    if not ours:
        return steps
    return _ovn_steps(view, ours, steps, ovn or OvnRemedy())


def _rebind_command(ovn: OvnRemedy, codes: Sequence[str], ports: Sequence[str]) -> str:
    """``vifdoctor repair`` through the API for these ports: Neutron re-binds them."""
    words = ["vifdoctor", "repair"]
    if ovn.cloud:
        words += ["--os-cloud", ovn.cloud]
    words += [w for c in codes for w in ("--code", c)]
    words += [w for p in ports for w in ("--port", p)]
    return command(*words, "--apply") or ""


def _api_rebind_hint(codes: Sequence[str], ports: Sequence[str]) -> str:
    """The API re-bind, named in a reason where the audit read the database (no cloud)."""
    return (
        "re-bind through Neutron's API: `"
        + _rebind_command(OvnRemedy(api=True, cloud="CLOUD"), codes, ports)
        + "` (CLOUD: your clouds.yaml entry, with the audit's OVN options)"
    )


def _ovn_steps(
    view: InstanceView, ours: list[Finding], steps: list[Step], ovn: OvnRemedy
) -> list[Step]:
    inst = view.instance
    assert inst is not None
    uuid, host = view.device_id, inst.host or next((p.host for p in view.ports if p.host), "")
    by_code: dict[str, list[Finding]] = {}
    for f in ours:
        by_code.setdefault(f.code, []).append(f)
    out = list(steps)

    def add(order: int, action: str, reason: str, cmd: str | None = "") -> None:
        out.append(Step(order, action, uuid, host, reason, cmd or ""))

    for f in by_code.get("VD401", []) + by_code.get("VD402", []) + by_code.get("VD403", []):
        cmd = None
        if f.code == "VD401" and f.host:
            cmd = command(
                "ovs-vsctl", "set", "Open_vSwitch", ".", f"external_ids:hostname={f.host}"
            )
        elif f.code == "VD402" and f.host:
            cmd = command("openstack", "network", "agent", "list", "--host", f.host)
        add(
            0,
            "fix-chassis",
            f"{f.code} {f.port_id}: {f.message}; on the host first ("
            + {
                "VD401": "run the command on it",
                "VD402": "until its agent is alive",
                "VD403": "map the physical network in its ovn-bridge-mappings",
            }[f.code]
            + "), then re-bind the port",
            cmd,
        )

    for f in by_code.get("VD404", []) + by_code.get("VD405", []):
        if f.extra.get("migrating_to"):
            add(
                1,
                "wait-migration",
                f"{f.code} {f.port_id}: a live migration to {f.extra['migrating_to']} is under "
                "way; the OVN driver writes the destination's binding and Nova plugs from "
                "it, and the repair leaves the port alone meanwhile: audit again once it ends",
            )
    detail_ports = sorted(
        {
            f.port_id
            for c in OVN_DETAIL_CODES
            for f in by_code.get(c, [])
            if not f.extra.get("migrating_to")
        }
    )
    detail_codes = [
        c
        for c in OVN_DETAIL_CODES
        if any(not f.extra.get("migrating_to") for f in by_code.get(c, []))
    ]
    rebind_only = sorted(
        {f.port_id for f in by_code.get("VD404", []) if not f.correction} & set(detail_ports)
    )
    if detail_ports and ovn.api:
        add(
            1,
            "rebind-ovn",
            "Neutron re-binds the port(s): the OVN driver writes the details for the "
            "chassis and the LSP anew (give it the audit's OVN options)",
            _rebind_command(ovn, detail_codes, detail_ports),
        )
    elif detail_ports:
        in_db = [p for p in detail_ports if p not in rebind_only]
        if in_db:
            words = [w for c in detail_codes for w in ("--code", c)]
            words += [w for p in in_db for w in ("--port", p)]
            add(
                1,
                "rewrite-ovn-details",
                "rewrite the details as the OVN driver writes them for the chassis (give it "
                "the audit's Neutron and OVN options; backed up, guarded)",
                command("vifdoctor", "repair", *words, "--apply"),
            )
        if rebind_only:
            add(
                1,
                "rebind-ovn",
                "the vif_type does not fit the chassis: no database rewrite changes it; "
                + _api_rebind_hint(["VD404"], rebind_only),
            )

    if "VD406" in by_code and ovn.sync_command:
        missing = ", ".join(sorted({f.port_id for f in by_code["VD406"]}))
        add(
            1,
            "ovn-db-sync",
            f"no LSP for {missing}: the util recreates it (it syncs the whole NB; run it "
            "once for every instance that lists it); the host's ovn-controller claims it "
            "while the VM's interface is there",
            ovn.sync_command,
        )

    requested = sorted({f.port_id for f in by_code.get("VD408", [])})
    if requested:
        why = (
            "requested-chassis is not the binding host: any update of the port makes the "
            "OVN driver rewrite the LSP's options from the binding"
        )
        if ovn.api:
            add(2, "rebind-ovn", why, _rebind_command(ovn, ["VD408"], requested))
        else:
            add(
                2,
                "rebind-ovn",
                f"{why}: " + _api_rebind_hint(["VD408"], requested),
            )

    replug: list[str] = []
    for f in by_code.get("VD409", []):
        claimed = str(f.extra.get("claimed_by") or "")
        if claimed:
            add(
                3,
                "release-claim",
                f"{f.port_id} is claimed by chassis {claimed}, not {f.host}: on that "
                "chassis's host, find the interface with the port's iface-id and delete it "
                "(`ovs-vsctl del-port NAME`); with requested-chassis right (VD408), its "
                "ovn-controller no longer claims it",
                _iface_id_lookup(f.port_id),
            )
        replug.append(f"{f.port_id} unclaimed: ovn-controller on {host} claims it at the plug")
    for f in by_code.get("VD413", []):
        add(
            3,
            "remove-duplicate-interface",
            f"{f.port_id}: {f.message}: on {f.host or host}, keep the VM's own interface and "
            "delete the others (`ovs-vsctl del-port NAME`)",
            _iface_id_lookup(f.port_id),
        )
    replug += [
        f"{f.port_id} has no interface on the OVN bridge: the plug creates it"
        for f in by_code.get("VD412", [])
    ]
    replug += [
        f"{f.port_id} is wired through qbr: the plug wires it direct"
        for f in by_code.get("VD415", [])
    ]
    changed = [f"{p} details rewritten" for p in detail_ports]
    replugged = _replugged(out, changed + replug)
    if replugged is not None:
        out = replugged
    elif inst.plugged:
        add(
            3,
            "hard-reboot",
            f"re-plug ({'; '.join(changed + replug)}): Nova re-reads the port and plugs it "
            "again; a live migration does too (the OVN driver writes the destination's "
            "binding and Nova plugs from it)",
            command("openstack", "server", "reboot", "--hard", uuid),
        )
    elif changed or replug:
        add(
            9,
            "none",
            f"{inst.vm_state or 'not running'}: its next start plugs from the fixed binding "
            f"({'; '.join(changed + replug)})",
        )

    for f in by_code.get("VD410", []):
        if "VD409" not in by_code:
            add(
                4,
                "check-status",
                f"{f.port_id}: {f.message}: check the host's ovn-controller; a restart of "
                "neutron's API resets port status from the LSPs",
            )
    for f in by_code.get("VD414", []):
        add(
            4,
            "check-ovn-controller",
            f"{f.port_id}: {f.message}: on {f.host or host}, check that ovn-controller runs "
            "and is connected to the SB (its log names what it could not install)",
            command("ovn-appctl", "-t", "ovn-controller", "connection-status"),
        )
    return out


def _iface_id_lookup(port_id: str) -> str:
    """The host's interfaces that carry the port's iface-id, by name."""
    return (
        command(
            "ovs-vsctl", "--columns=name", "find", "Interface", f"external_ids:iface-id={port_id}"
        )
        or ""
    )


def _replugged(steps: list[Step], why: list[str]) -> list[Step] | None:
    """Nova's own re-plug step (hard reboot, or the next start) with our reasons added;
    None when there is none (or nothing to add): one re-plug per instance."""
    if not why:
        return steps
    for i, s in enumerate(steps):
        if (s.action, s.order) in (("hard-reboot", 3), ("none", 9)):
            text = f"{s.reason}; {'; '.join(why)}"
            return [
                *steps[:i],
                Step(s.order, s.action, s.instance, s.host, text, s.command),
                *steps[i + 1 :],
            ]
    return None
