"""Commands vifdoctor prints for a person to paste are inert: every value quoted, no
command for an id that is not a UUID, no terminal control character reaching the screen.

Issue 13: a tenant-set ``device_id`` of ``x$(touch PWNED)`` reached the operator's
shell through ``openstack server reboot --hard ...`` in the plan's footer.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from testkit.cloudfactory import binding
from testkit.hostilekit import DEVICE_IDS, HOSTS, hostile_cloud, port_id
from testkit.repairkit import cli, install, legacy_ovs_agent, network, vm_port

from vifdoctor.demo.builder import CloudSpec
from vifdoctor.rules.nova import Instance, judge_instance, remediation
from vifdoctor.rules.plug import FW_IPTABLES_HYBRID, FirewallAssumption, RuleContext

VM = "6f952f0c-62fd-43a8-81fa-0c178dab8eb9"
CTX = RuleContext(firewall=FirewallAssumption(FW_IPTABLES_HYBRID, "test"))


def _commands(text: str) -> list[str]:
    return [
        line.strip()
        for line in text.splitlines()
        if line.strip().startswith(("openstack ", "nova ", "vifdoctor "))
    ]


def _pasted(line: str, tmp_path: Path) -> None:
    """Run the line through a real shell with every command replaced by `true`."""
    words = shlex.split(line, comments=True)
    script = "set -e; " + " ".join(shlex.quote(w) for w in ["true", *words[1:]])
    subprocess.run(["sh", "-c", script], cwd=tmp_path, check=True)
    assert not list(tmp_path.glob("PWNED*"))


def _running_vm(host: str) -> Instance:
    """Instance VM, active on ``host``."""
    return Instance(
        uuid=VM,
        cell="c",
        name="",
        host=host,
        node="",
        vm_state="active",
        power_state=1,
        task_state=None,
        deleted=False,
        network_info=None,
    )


def test_plan_prints_no_command_for_a_hostile_device_id(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    install(url, hostile_cloud(nul=False), "icehouse")
    code, out, err = cli(capsys, "plan", "--neutron-db", url)
    assert code == 0, err
    assert "$(touch" not in "\n".join(_commands(out))
    for device in DEVICE_IDS:
        assert f"--hard {device}" not in out
    assert "is not an instance UUID" in out
    assert "\x1b" not in out and "\r" not in out


def test_plan_quotes_a_uuid_command_and_escapes_hosts(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'n.sqlite'}"
    host = HOSTS[4]  # ESC sequences and \r\n
    port = vm_port(1, host, "")
    port.device_id = VM
    install(
        url,
        CloudSpec(networks=[network()], agents=[legacy_ovs_agent(host)], ports=[port]),
        "icehouse",
    )
    code, out, err = cli(capsys, "plan", "--neutron-db", url)
    assert code == 0, err
    assert f"openstack server reboot --hard {VM}" in out
    assert "\x1b" not in out and "\r" not in out
    assert "\\x1b[31mred" in out  # shown, escaped


def test_remediation_refuses_a_hostile_device_id():
    for device in DEVICE_IDS:
        b = binding(port_id=port_id(1), device_id=device, host="compute1", vif_details="")
        found, view = judge_instance(device, None, [(b, _judged(b))], CTX)
        steps = remediation(view, found)
        assert [s.action for s in steps] == ["check-id"]
        assert steps[0].command == ""


def test_remediation_quotes_a_hostile_host(tmp_path):
    host = "c1; touch PWNED-$(id -u) `touch PWNED2` 'q\"r"
    b = binding(
        port_id=port_id(1),
        device_id=VM,
        host="compute2",
        vif_details='{"port_filter": true, "ovs_hybrid_plug": true}',
    )
    inst = _running_vm(host)
    found, view = judge_instance(VM, inst, [(b, _judged(b))], CTX)
    steps = {s.action: s.command for s in remediation(view, found)}
    assert shlex.split(steps["rebind-host"]) == [
        "openstack",
        "port",
        "set",
        "--host",
        host,
        port_id(1),
    ]
    for command in steps.values():
        if command:
            _pasted(command, tmp_path)


def _judged(b):
    from vifdoctor.rules.binding import judge_binding

    return judge_binding(b, [legacy_agent()], CTX)


def legacy_agent():
    from testkit.cloudfactory import legacy_ovs

    return legacy_ovs("compute1")


def test_ovn_remediation_quotes_hostile_values(tmp_path):
    """The OVN steps: a hostile host (VD401), cloud name and chassis (VD409) are quoted;
    a hostile device_id gets check-id and no OVN command at all."""
    from vifdoctor.rules.finding import new_finding
    from vifdoctor.rules.ovn_remedy import OvnRemedy, instance_steps

    host = "c1; touch PWNED-$(id -u) `touch PWNED2` 'q\"r"
    b = binding(port_id=port_id(1), device_id=VM, host=host, vif_details="{}")
    inst = _running_vm(host)
    ours = [
        new_finding("VD401", b, "no chassis"),
        new_finding("VD404", b, "bridge", correction={"set": {"bridge_name": "br-int"}}),
        new_finding("VD408", b, "requested"),
        new_finding("VD409", b, "claimed", extra={"claimed_by": "ch$(touch PWNED3)"}),
    ]
    found, view = judge_instance(VM, inst, [(b, _judged(b))], CTX)
    api = OvnRemedy("neutron-ovn-db-sync-util --ovn-neutron_sync_mode repair", True, "c;$(x)")
    steps = {s.action: s.command for s in instance_steps(view, found + ours, api)}
    assert shlex.split(steps["fix-chassis"])[-1] == f"external_ids:hostname={host}"
    assert shlex.split(steps["rebind-ovn"])[:4] == ["vifdoctor", "repair", "--os-cloud", "c;$(x)"]
    assert steps["hard-reboot"] == f"openstack server reboot --hard {VM}"
    for command in steps.values():
        if command:
            _pasted(command, tmp_path)
    for device in DEVICE_IDS:
        b = binding(port_id=port_id(1), device_id=device, host="compute1", vif_details="")
        found, view = judge_instance(device, None, [(b, _judged(b))], CTX)
        steps_ = instance_steps(view, found + [new_finding("VD404", b, "x")], api)
        assert [(s.action, s.command) for s in steps_] == [("check-id", "")]


def test_ovn_host_wiring_steps_quote_and_merge_into_one_replug(tmp_path):
    """VD412/VD415 join the instance's one re-plug; VD413 and VD414 get their own host
    steps, with the port's iface-id quoted in the pasted command."""
    from vifdoctor.rules.finding import new_finding
    from vifdoctor.rules.ovn_remedy import instance_steps

    b = binding(port_id=port_id(1), device_id=VM, host="compute1", vif_details="{}")
    inst = _running_vm("compute1")
    found, view = judge_instance(VM, inst, [(b, _judged(b))], CTX)
    ours = [
        new_finding("VD412", b, "no interface"),
        new_finding("VD413", b, "two interfaces"),
        new_finding("VD414", b, "no ovn-installed"),
        new_finding("VD415", b, "wired through qbr"),
    ]
    steps = instance_steps(view, found + ours)
    by_action = {s.action: s for s in steps}
    assert [s.action for s in steps].count("hard-reboot") == 1
    reboot = by_action["hard-reboot"]
    assert "no interface on the OVN bridge" in reboot.reason and "through qbr" in reboot.reason
    dup = by_action["remove-duplicate-interface"]
    assert shlex.split(dup.command)[-1] == f"external_ids:iface-id={port_id(1)}"
    assert by_action["check-ovn-controller"].command == (
        "ovn-appctl -t ovn-controller connection-status"
    )
    for step in steps:
        if step.command:
            _pasted(step.command, tmp_path)
