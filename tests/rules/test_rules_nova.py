"""vifdoctor.rules.nova and the audit's merge-join, as pure functions (no database).

What the rules rest on, read in nova 34.0.0 (/tmp/src/nova):
* ``instance_info_caches.network_info`` is ``NetworkInfo.json()``: a JSON list of VIF
  dicts whose ``details`` are Neutron's ``binding:vif_details`` copied verbatim
  (``nova.network.neutron.API._build_vif_model``; ``vif_entry`` mirrors it key for key).
* The binding legitimately sits on another host while a move is under way
  (``nova.compute.task_states``: migrating, resize_*, rebuild*, unshelving ...) and
  while a resize waits for confirmation (vm_state ``resized``).
* Nova soft-deletes: ``deleted`` = the row id, never 0, once an instance is gone.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from testkit.cloudfactory import DIRECT_29, HYBRID_29, binding, reporting_ovs
from testkit.novakit import CTX, HYBRID, HYBRID_TEXT, cache, instance, judged, port_id, vif

from vifdoctor.audit import join_by_instance
from vifdoctor.model import VERDICT_FIELDS, Binding, Instance, Migration, parse_network_info
from vifdoctor.rules.migration import judge_moves
from vifdoctor.rules.nova import (
    PortTemplate,
    cache_differences,
    expected_devname,
    impact,
    instance_is_quiet,
    judge_instance,
    remediation,
)

P1, P2, P3 = port_id(1), port_id(2), port_id(3)
VM = "6f952f0c-62fd-43a8-81fa-0c178dab8eb9"


def ovs(port: str = P1, details: str = HYBRID_TEXT, host: str = "compute1", **kw):
    return binding(port_id=port, device_id=VM, host=host, vif_details=details, **kw)


def codes(findings) -> list[str]:
    return sorted(f.code for f in findings)


# ------------------------------------------------------------------ parse_network_info


@pytest.mark.parametrize("raw", [None, "[]"])
def test_parse_empty_cache(raw):
    parsed = parse_network_info(raw)
    assert parsed.vifs == {} and parsed.error is None


def test_parse_blank_text_reads_as_no_vifs():
    """'' is taken as an empty cache (no VD205). nova 34 itself cannot load it (below)."""
    parsed = parse_network_info("")
    assert parsed.vifs == {}


def test_parse_blank_text_is_unreadable_for_nova():
    assert parse_network_info("").error is not None


def test_parse_empty_object_reads_as_no_vifs_like_nova():
    assert parse_network_info("{}").error is None


def test_parse_keeps_vifs_by_port_id():
    a, b = vif(P1, HYBRID), vif(P2, {})
    parsed = parse_network_info(cache(a, b))
    assert parsed.error is None
    assert parsed.vifs == {P1: a, P2: b}


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ('[{"id": "' + P1 + '", "details": {"ovs_hy', "not valid JSON"),  # cut short
        ("[{'id': 'x'}]", "not valid JSON"),  # a Python repr written by hand
        ('{"id": "x"}', "not a list"),  # one VIF, not a list of them
        ("null", "not a list"),  # NetworkInfo.hydrate(None): TypeError in nova
        ('"[]"', "not a list"),  # JSON-encoded twice
        ("[1, 2]", "not all VIF objects"),
        ('["' + P1 + '"]', "not all VIF objects"),
        ('[{"address": "fa:16:3e:00:00:01"}]', "not all VIF objects"),  # no id
        ('[{"id": 7}]', "not all VIF objects"),  # id not a string
        ('[{"id": "' + P1 + '"}, 3]', "not all VIF objects"),  # one good item is not enough
    ],
)
def test_parse_malformed_cache_is_an_error_without_vifs(raw, error):
    parsed = parse_network_info(raw)
    assert parsed.error is not None and error in parsed.error
    assert parsed.vifs == {}


def test_parse_deep_nesting_does_not_raise():
    parsed = parse_network_info("[" * 200_000 + "]" * 200_000)
    assert parsed.error is not None and parsed.vifs == {}


@pytest.mark.parametrize("shape", ["many vifs", "one huge vif", "huge garbage", "deep"])
def test_parse_5mb_value_is_fast(shape):
    if shape == "many vifs":
        raw = cache(*(vif(port_id(n), HYBRID) for n in range(5_000)))
    elif shape == "one huge vif":
        raw = cache({**vif(P1, HYBRID), "meta": {"blob": "x" * 5_000_000}})
    elif shape == "huge garbage":
        raw = "[" + "{" * 5_000_000
    else:
        raw = "[" * 2_500_000 + "]" * 2_500_000
    assert len(raw) >= 2_500_000
    start = time.perf_counter()
    parsed = parse_network_info(raw)
    assert time.perf_counter() - start < 3
    if shape == "many vifs":
        assert parsed.error is None and len(parsed.vifs) == 5_000
    elif shape == "one huge vif":
        assert parsed.error is None and list(parsed.vifs) == [P1]
    else:
        assert parsed.error is not None


# ------------------------------------------------------------------ cache_differences


def test_cache_equal_to_what_nova_builds_has_no_difference():
    assert cache_differences(ovs(), vif(P1, HYBRID)) == []
    assert cache_differences(ovs(details=""), vif(P1, {})) == []
    assert cache_differences(ovs(details=HYBRID_29), vif(P1, json.loads(HYBRID_29))) == []


def test_details_in_another_key_order_are_the_same():
    stored = '{"ovs_hybrid_plug": true, "port_filter": true}'
    cached = vif(P1, {"port_filter": True, "ovs_hybrid_plug": True})
    assert list(cached["details"]) != list(json.loads(stored))
    assert cache_differences(ovs(details=stored), cached) == []


def test_details_differ():
    diffs = cache_differences(ovs(details=HYBRID_TEXT), vif(P1, {}))
    assert len(diffs) == 1 and diffs[0].startswith("details {} != Neutron's")
    # A value, not only a key: false vs true.
    diffs = cache_differences(
        ovs(details=HYBRID_TEXT), vif(P1, {"port_filter": True, "ovs_hybrid_plug": False})
    )
    assert len(diffs) == 1 and diffs[0].startswith("details")


def test_malformed_neutron_details_compare_as_the_empty_object_nova_is_given():
    """Ml2Plugin._get_vif_details hands Nova {} for text that does not parse."""
    assert cache_differences(ovs(details='{"port_filter": true, "ovs_hy'), vif(P1, {})) == []
    assert cache_differences(ovs(details='{"port_filter": true, "ovs_hy'), vif(P1, HYBRID))


@pytest.mark.parametrize("cached", ["missing", "null"])
def test_cached_vif_without_details_reads_as_empty_like_nova(cached):
    v = vif(P1, {})
    if cached == "missing":
        del v["details"]
    else:
        v["details"] = None
    assert cache_differences(ovs(details=""), v) == []


def test_type_differs():
    diffs = cache_differences(ovs(), vif(P1, HYBRID, vif_type="bridge"))
    assert any(d == "type 'bridge' != 'ovs'" for d in diffs)


def test_devname_differs_and_missing_devname_is_no_difference():
    assert expected_devname(P1) == "tap00000000-00" and len(expected_devname(P1)) == 14
    diffs = cache_differences(ovs(), vif(P1, HYBRID, devname="tapdeadbeef-00"))
    assert diffs == ["devname 'tapdeadbeef-00' != 'tap00000000-00'"]
    assert cache_differences(ovs(), {**vif(P1, HYBRID), "devname": None}) == []


def test_ovs_interfaceid_differs():
    diffs = cache_differences(ovs(), vif(P1, HYBRID, ovs_interfaceid=None))
    assert diffs == [f"ovs_interfaceid None != {P1!r}"]
    diffs = cache_differences(ovs(), vif(P1, HYBRID, ovs_interfaceid=P2))
    assert diffs == [f"ovs_interfaceid {P2!r} != {P1!r}"]


def test_ovs_interfaceid_of_other_vif_types():
    """_nw_info_build_network: the port id for ovs and for vhostuser with vhostuser_ovs_plug."""
    vhu = binding(port_id=P1, vif_type="vhostuser", vif_details='{"vhostuser_ovs_plug": true}')
    assert cache_differences(vhu, vif(P1, {"vhostuser_ovs_plug": True}, vif_type="vhostuser")) == []
    plain = binding(port_id=P1, vif_type="vhostuser", vif_details="{}")
    assert cache_differences(plain, vif(P1, {}, vif_type="vhostuser")) == []
    assert cache_differences(plain, vif(P1, {}, vif_type="vhostuser", ovs_interfaceid=P1))


def test_every_difference_is_listed():
    cached = vif(P1, {}, vif_type="bridge", devname="tapx", ovs_interfaceid=None)
    diffs = cache_differences(ovs(), cached)
    assert [d.split(" ", 1)[0] for d in diffs] == ["details", "type", "devname", "ovs_interfaceid"]


# ------------------------------------------------------------------ judge_instance


def test_consistent_instance_has_no_finding():
    inst = instance(VM, network_info=cache(vif(P1, HYBRID)))
    found, view = judge_instance(VM, inst, [judged(ovs())], CTX)
    assert found == [] and view.codes == set()
    assert [p.port_id for p in view.ports] == [P1]


def test_vd201_after_a_repair_neutron_hybrid_cache_empty():
    """The binding is fixed, but the running VM's cache still has the old {} details."""
    inst = instance(VM, network_info=cache(vif(P1, {})))
    found, view = judge_instance(VM, inst, [judged(ovs(details=HYBRID_TEXT))], CTX)
    assert codes(found) == ["VD201"]
    f = found[0]
    assert (f.port_id, f.device_id, f.host) == (P1, VM, "compute1")
    assert "details {} != Neutron's" in f.message
    assert f.stored_details == {}  # what Nova cached
    assert f.instance["uuid"] == VM
    port = view.ports[0]
    assert (port.cached_plug, port.next_plug, port.after_repair_plug) == (
        "direct",
        "hybrid",
        "hybrid",
    )


def test_unknown_cache_is_not_judged_but_host_mismatch_still_is():
    """The compute API shows no info cache: no VD201/VD203/VD205, VD202 as usual."""
    inst = instance(VM, host="compute1", network_info=None, cache_known=False)
    found, view = judge_instance(VM, inst, [judged(ovs(host="compute2"))], CTX)
    assert codes(found) == ["VD202"]
    assert view.ports[0].cached_plug == "unknown"
    # the same instance with a known but empty cache: the port is missing from it
    found, _ = judge_instance(VM, instance(VM, network_info=None), [judged(ovs())], CTX)
    assert codes(found) == ["VD203"]


def test_vd202_host_mismatch():
    inst = instance(VM, host="compute1", network_info=cache(vif(P1, HYBRID)))
    found, _ = judge_instance(VM, inst, [judged(ovs(host="compute2"))], CTX)
    assert codes(found) == ["VD202"]
    assert found[0].host == "compute2" and "instance " + VM + " is on compute1" in (
        found[0].message
    )


@pytest.mark.parametrize(
    "state",
    [
        {"task_state": "migrating"},
        {"task_state": "resize_migrated"},
        {"task_state": "resize_migrating"},
        {"task_state": "rebuilding"},
        {"task_state": "unshelving"},
        {"vm_state": "resized"},
    ],
)
def test_no_vd202_while_a_move_is_under_way(state):
    inst = instance(VM, host="compute1", network_info=cache(vif(P1, HYBRID)), **state)
    found, _ = judge_instance(VM, inst, [judged(ovs(host="compute2"))], CTX)
    assert "VD202" not in codes(found)


@pytest.mark.parametrize(
    "state", [{"task_state": "powering-off"}, {"vm_state": "stopped", "power_state": 4}]
)
def test_vd202_when_the_task_is_no_move(state):
    inst = instance(VM, host="compute1", network_info=cache(vif(P1, HYBRID)), **state)
    found, _ = judge_instance(VM, inst, [judged(ovs(host="compute2"))], CTX)
    assert "VD202" in codes(found)


def test_no_vd202_without_a_host_on_either_side():
    shelved = instance(
        VM,
        host="",
        vm_state="shelved_offloaded",
        power_state=4,
        network_info=cache(vif(P1, HYBRID)),
    )
    found, _ = judge_instance(VM, shelved, [judged(ovs(host="compute2"))], CTX)
    assert "VD202" not in codes(found)


def test_vd203_port_in_neutron_missing_from_the_cache():
    inst = instance(VM, network_info=cache(vif(P1, HYBRID)))
    found, _ = judge_instance(VM, inst, [judged(ovs(P1)), judged(ovs(P2))], CTX)
    assert [(f.code, f.port_id) for f in found] == [("VD203", P2)]
    assert "missing from" in found[0].message


def test_vd203_port_missing_when_there_is_no_cache_row():
    inst = instance(VM, network_info=None)
    found, view = judge_instance(VM, inst, [judged(ovs(P1))], CTX)
    assert codes(found) == ["VD203"]
    assert view.ports[0].cached_plug == "unknown" and view.ports[0].wired_basis == "none"


def test_vd203_cached_port_not_attached_in_neutron():
    inst = instance(VM, network_info=cache(vif(P1, HYBRID), vif(P3, HYBRID), vif(P2, HYBRID)))
    found, _ = judge_instance(VM, inst, [judged(ovs(P1))], CTX)
    assert [(f.code, f.port_id) for f in found] == [("VD203", P2), ("VD203", P3)]
    assert all(f.device_id == VM and "not attached" in f.message for f in found)


def test_cached_only_ports_are_not_judged_when_the_ports_were_narrowed():
    inst = instance(VM, network_info=cache(vif(P1, HYBRID), vif(P2, HYBRID)))
    found, _ = judge_instance(VM, inst, [judged(ovs(P1))], CTX, check_missing_ports=False)
    assert found == []


def test_instance_without_any_neutron_port():
    inst = instance(VM, network_info=cache(vif(P1, HYBRID)))
    found, view = judge_instance(VM, inst, [], CTX)
    assert [(f.code, f.port_id) for f in found] == [("VD203", P1)]
    assert judge_instance(VM, instance(VM, network_info="[]"), [], CTX)[0] == []


def test_vd204_unknown_instance():
    found, view = judge_instance(VM, None, [judged(ovs())], CTX)
    assert [(f.code, f.port_id, f.device_id) for f in found] == [("VD204", P1, VM)]
    assert "unknown to the Nova cells read" in found[0].message
    assert view.ports == []


def test_vd204_soft_deleted_instance():
    gone = instance(
        VM, vm_state="deleted", power_state=0, deleted=True, network_info=cache(vif(P1, HYBRID))
    )
    found, _ = judge_instance(VM, gone, [judged(ovs()), judged(ovs(P2))], CTX)
    assert [(f.code, f.port_id) for f in found] == [("VD204", P1), ("VD204", P2)]
    assert "soft-deleted" in found[0].message and found[0].instance["deleted"] is True


@pytest.mark.parametrize("deleted", [False, True])
def test_no_vd204_for_unbound_ports(deleted):
    inst = None if not deleted else instance(VM, deleted=True)
    unbound = ovs(host="", vif_type="unbound", details="")
    found, _ = judge_instance(VM, inst, [judged(unbound, [])], CTX)
    assert found == []


def test_deleted_instance_gets_no_other_finding():
    gone = instance(VM, host="compute9", deleted=True, network_info="not json")
    found, _ = judge_instance(VM, gone, [judged(ovs())], CTX)
    assert codes(found) == ["VD204"]


def test_vd205_malformed_cache():
    raw = '[{"id": "' + P1 + '", "details": {"ovs_hy' + "x" * 1000
    inst = instance(VM, network_info=raw)
    found, view = judge_instance(VM, inst, [judged(ovs())], CTX)
    assert codes(found) == ["VD205"]  # and no VD203: an unreadable cache proves nothing
    f = found[0]
    assert f.device_id == VM and f.port_id == "" and "not valid JSON" in f.message
    assert f"({len(raw)} chars)" in f.message and len(f.message) < 600
    assert view.ports[0].wired_basis == "none"


def test_binding_findings_reach_the_view():
    inst = instance(VM, network_info=cache(vif(P1, {})))
    found, view = judge_instance(VM, inst, [judged(ovs(details=""))], CTX)
    assert found == []  # the cache matches Neutron's {}: nothing Nova-side
    assert view.codes == {"VD101", "VD103"}
    assert view.ports[0].codes == ["VD101", "VD103"]


# ------------------------------------------------------------------ Instance state


@pytest.mark.parametrize(
    ("power", "vm_state", "plugged", "stopped"),
    [
        (1, "active", True, False),
        (3, "paused", True, False),
        (7, "suspended", True, False),
        (4, "stopped", False, True),
        (4, "active", False, True),  # shut off behind Nova's back
        (0, "error", False, False),
        (None, "active", True, False),
        (None, "stopped", False, True),
    ],
)
def test_instance_plugged_and_stopped(power, vm_state, plugged, stopped):
    inst = Instance(uuid=VM, cell="c", vm_state=vm_state, power_state=power)
    assert (inst.plugged, inst.stopped) == (plugged, stopped)


# ------------------------------------------------------------------ impact


def _view(inst, *ports, live=None):
    return judge_instance(VM, inst, list(ports), CTX, live=live)


def test_impact_running_direct_wired_vm_needing_hybrid():
    found, view = _view(instance(VM, network_info=cache(vif(P1, {}))), judged(ovs(details="")))
    out = impact(view)
    assert out["running"] is True and out["state"] == "active/running"
    assert out["wired_as"] == {P1: "direct"} and out["wired_as_basis"] == {P1: "nova cache"}
    assert out["security_groups"] == f"not enforced on {P1}"
    assert out["next_stop_start_or_hard_reboot"].startswith(f"plugs {P1} other than the host")


def test_impact_stopped_vm():
    stopped = instance(VM, vm_state="stopped", power_state=4, network_info=cache(vif(P1, {})))
    _, view = _view(stopped, judged(ovs(details="")))
    out = impact(view)
    assert out["running"] is False and out["state"] == "stopped/shutdown"
    assert out["security_groups"] == "not running (applies from its next start)"


def test_impact_hybrid_wired_vm_is_enforced_and_keeps_its_plug():
    _, view = _view(instance(VM, network_info=cache(vif(P1, HYBRID))), judged(ovs()))
    out = impact(view)
    assert out["security_groups"] == "enforced"
    assert out["next_stop_start_or_hard_reboot"] == "keeps the current plug"


def test_impact_after_the_repair_the_next_reboot_replugs():
    _, view = _view(instance(VM, network_info=cache(vif(P1, {}))), judged(ovs()))
    out = impact(view)
    assert out["security_groups"] == f"not enforced on {P1}"
    assert out["next_stop_start_or_hard_reboot"] == f"re-plugs {P1} direct -> hybrid"


def test_impact_unknown_wiring_without_cache_entry():
    _, view = _view(instance(VM, network_info="[]"), judged(ovs(details="")))
    assert impact(view)["security_groups"] == f"unknown (no cache entry) for {P1}"


def test_impact_not_affected_when_the_host_needs_direct():
    agents = [reporting_ovs(False)]
    b = ovs(details=DIRECT_29)
    _, view = _view(
        instance(VM, network_info=cache(vif(P1, json.loads(HYBRID_29)))), judged(b, agents)
    )
    out = impact(view)
    assert out["security_groups"] == "not affected"
    assert out["next_stop_start_or_hard_reboot"] == f"re-plugs {P1} hybrid -> direct"


def test_impact_without_instance():
    _, view = _view(None, judged(ovs()))
    out = impact(view)
    assert out["running"] is False and out["state"] == "no instance"


# ------------------------------------------------------------------ remediation


def _steps(inst, *ports, live=None):
    found, view = judge_instance(VM, inst, list(ports), CTX, live=live)
    return [(s.order, s.action, s.command) for s in remediation(view, found)]


def test_running_vm_whose_plug_must_change_needs_a_hard_reboot():
    steps = _steps(instance(VM, network_info=cache(vif(P1, {}))), judged(ovs(details="")))
    assert steps == [
        (1, "repair-binding", f"vifdoctor repair --port {P1} --apply"),
        (3, "hard-reboot", f"openstack server reboot --hard {VM}"),
    ]


def test_stopped_vm_needs_nothing_after_the_repair():
    stopped = instance(VM, vm_state="stopped", power_state=4, network_info=cache(vif(P1, {})))
    steps = _steps(stopped, judged(ovs(details="")))
    assert [s[1] for s in steps] == ["repair-binding", "none"]
    assert steps[1][2] == ""


def test_stale_cache_only_needs_a_refresh():
    """Both sides hybrid, Neutron's details newer: no re-plug, only the cache."""
    steps = _steps(
        instance(VM, network_info=cache(vif(P1, HYBRID))), judged(ovs(details=HYBRID_29))
    )
    assert [(o, a) for o, a, _ in steps] == [(4, "refresh-network")]
    assert steps[0][2].startswith(f"nova refresh-network {VM}  # or POST ")
    assert f'"server_uuid": "{VM}"' in steps[0][2]


def test_vd203_only_needs_a_refresh():
    steps = _steps(
        instance(VM, network_info=cache(vif(P1, HYBRID), vif(P2, HYBRID))), judged(ovs())
    )
    assert [a for _, a, _ in steps] == ["refresh-network"]


def test_vd202_needs_rebind_then_hard_reboot():
    inst = instance(VM, host="compute1", network_info=cache(vif(P1, HYBRID)))
    steps = _steps(inst, judged(ovs(host="compute2")))
    assert steps == [
        (2, "rebind-host", f"openstack port set --host compute1 {P1}"),
        (3, "hard-reboot", f"openstack server reboot --hard {VM}"),
    ]


def test_orphan_needs_a_check():
    found, view = judge_instance(VM, None, [judged(ovs())], CTX)
    steps = remediation(view, found)
    assert [(s.action, s.host) for s in steps] == [("check-orphan", "compute1")]
    assert steps[0].command == (
        f"openstack server show {VM} --all-projects  # then: openstack port delete {P1}"
    )


def test_consistent_instance_needs_nothing():
    assert _steps(instance(VM, network_info=cache(vif(P1, HYBRID))), judged(ovs())) == []


def test_live_hybrid_wiring_overrides_the_cache():
    """Nova's cache says direct, the host scan found hybrid: no reboot after the repair."""
    inst = instance(VM, network_info=cache(vif(P1, {})))
    steps = _steps(inst, judged(ovs(details="")), live={P1: "hybrid"})
    assert "hard-reboot" not in [a for _, a, _ in steps]
    assert [a for _, a, _ in steps] == ["repair-binding", "refresh-network"]
    _, view = _view(inst, judged(ovs(details="")), live={P1: "hybrid"})
    assert impact(view)["wired_as_basis"] == {P1: "host scan"}
    assert impact(view)["security_groups"] == "enforced"


def test_live_direct_wiring_overrides_a_hybrid_cache():
    """The cache says hybrid (stale), the host scan found direct: it must be rebooted."""
    inst = instance(VM, network_info=cache(vif(P1, HYBRID)))
    steps = _steps(inst, judged(ovs(details="")), live={P1: "direct"})
    assert [a for _, a, _ in steps] == ["repair-binding", "hard-reboot"]
    # From the cache alone it looks hybrid-wired: a refresh, no reboot.
    assert [a for _, a, _ in _steps(inst, judged(ovs(details="")))] == [
        "repair-binding",
        "refresh-network",
    ]


def test_live_wiring_of_an_unknown_kind_falls_back_to_the_cache():
    inst = instance(VM, network_info=cache(vif(P1, {})))
    _, view = _view(inst, judged(ovs(details="")), live={P1: "missing"})
    assert view.ports[0].wired_basis == "nova cache" and view.ports[0].cached_plug == "direct"


# ------------------------------------------------------------------ join_by_instance


def _b(device: str, port: str):
    return binding(port_id=port, device_id=device)


def _i(uuid: str, deleted: bool = False, cell: str = "cell1"):
    return Instance(uuid=uuid, cell=cell, deleted=deleted)


def _joined(ports, insts):
    return [
        (d, [b.port_id for b in g], (i.cell, i.deleted) if i else None)
        for d, g, i in join_by_instance(ports, insts)
    ]


def test_join_merges_sorted_streams():
    ports = [_b("a", "pa"), _b("c", "pc1"), _b("c", "pc2"), _b("e", "pe"), _b("f", "pf")]
    insts = [_i("a"), _i("b"), _i("d"), _i("e"), _i("g")]
    assert _joined(iter(ports), iter(insts)) == [
        ("a", ["pa"], ("cell1", False)),
        ("b", [], ("cell1", False)),  # an instance without ports
        ("c", ["pc1", "pc2"], None),  # ports without an instance
        ("d", [], ("cell1", False)),
        ("e", ["pe"], ("cell1", False)),
        ("f", ["pf"], None),
        ("g", [], ("cell1", False)),
    ]


def test_join_of_empty_streams():
    assert _joined([], []) == []
    assert _joined([_b("a", "p1")], []) == [("a", ["p1"], None)]
    assert _joined([], [_i("a"), _i("b")]) == [
        ("a", [], ("cell1", False)),
        ("b", [], ("cell1", False)),
    ]


def test_join_is_lazy():
    """Both sides are streams from the databases: nothing is read ahead beyond one row."""
    pulled = []

    def insts():
        for u in ("a", "b", "c"):
            pulled.append(u)
            yield _i(u)

    joined = join_by_instance(iter([_b("a", "p1")]), insts())
    assert next(joined)[0] == "a"
    assert pulled == ["a", "b"]


@pytest.mark.parametrize("order", ["deleted first", "live first"])
def test_join_uuid_in_two_cells_the_live_row_wins(order):
    rows = [_i("a", True, "cell1"), _i("a", False, "cell2")]
    if order == "live first":
        rows.reverse()
    assert _joined([_b("a", "p1")], rows + [_i("b")]) == [
        ("a", ["p1"], ("cell2", False)),
        ("b", [], ("cell1", False)),
    ]


def test_join_uuid_deleted_in_both_cells_stays_deleted():
    rows = [_i("a", True, "cell1"), _i("a", True, "cell2")]
    assert _joined([_b("a", "p1")], rows) == [("a", ["p1"], ("cell1", True))]


def test_join_uuid_in_two_cells_without_ports_is_one_instance():
    rows = [_i("a", True, "cell1"), _i("a", False, "cell2")]
    assert _joined([], rows) == [("a", [], ("cell2", False))]


# ------------------------------------------------------------------ instance_is_quiet
# Issue 14: the audit counts a quiet instance's ports without judge_instance. Each case
# below changes one thing from a quiet instance; whatever instance_is_quiet accepts,
# judge_instance and judge_moves must find nothing for, and give no code.


OTHER = "ffffffff-0000-4000-8000-000000000002"  # a devname of its own, unlike P1's and P2's


def _vifs(**change: Any) -> list[dict]:
    return [vif(P1, HYBRID), vif(P2, HYBRID, **change)]


QUIET_CASES: dict[str, Callable[[], tuple[Instance | None, list[Binding]]]] = {
    "quiet": lambda: (instance(VM, network_info=cache(*_vifs()), migrations=[]), []),
    "details differ": lambda: (
        instance(
            VM, network_info=cache(vif(P1, HYBRID), vif(P2, {"port_filter": True})), migrations=[]
        ),
        [],
    ),
    "type differs": lambda: (
        instance(
            VM,
            network_info=cache(vif(P1, HYBRID), vif(P2, HYBRID, vif_type="bridge")),
            migrations=[],
        ),
        [],
    ),
    # the template is P1's row: a devname or interface id right for P1 is wrong for P2
    "devname of the template's port": lambda: (
        instance(
            VM,
            network_info=cache(vif(P1, HYBRID), vif(OTHER, HYBRID, devname=expected_devname(P1))),
            migrations=[],
        ),
        [ovs(P1), ovs(OTHER)],
    ),
    "ovs_interfaceid of the template's port": lambda: (
        instance(
            VM,
            network_info=cache(vif(P1, HYBRID), vif(P2, HYBRID, ovs_interfaceid=P1)),
            migrations=[],
        ),
        [],
    ),
    "port missing from the cache": lambda: (
        instance(VM, network_info=cache(vif(P1, HYBRID)), migrations=[]),
        [],
    ),
    "another port cached": lambda: (
        instance(VM, network_info=cache(*_vifs(), vif(P3, HYBRID)), migrations=[]),
        [],
    ),
    "malformed cache": lambda: (instance(VM, network_info="[{", migrations=[]), []),
    "no cache row": lambda: (instance(VM, network_info=None, migrations=[]), []),
    "cache unknown": lambda: (
        instance(VM, network_info=cache(*_vifs()), migrations=[], cache_known=False),
        [],
    ),
    "soft-deleted": lambda: (
        instance(VM, network_info=cache(*_vifs()), migrations=[], deleted=True),
        [],
    ),
    "unknown instance": lambda: (None, []),
    "on another host": lambda: (
        instance(VM, host="compute2", network_info=cache(*_vifs()), migrations=[]),
        [],
    ),
    "on another host, moving": lambda: (
        instance(
            VM, host="compute2", network_info=cache(*_vifs()), migrations=[], task_state="migrating"
        ),
        [],
    ),
    "a migration record": lambda: (
        instance(VM, network_info=cache(*_vifs()), migrations=[_done_move()]),
        [],
    ),
    "a port with a finding": lambda: (
        instance(VM, network_info=cache(vif(P1, HYBRID), vif(P2, {})), migrations=[]),
        [ovs(P1), ovs(P2, details="")],
    ),
}


def _done_move() -> Migration:
    return Migration(
        id=1,
        instance_uuid=VM,
        migration_type="live-migration",
        status="completed",
        source_compute="compute1",
        dest_compute="compute2",
        created_at="2026-01-01 00:00:00",
        updated_at="2026-01-01 00:00:00",
    )


@pytest.mark.parametrize("case", sorted(QUIET_CASES))
def test_a_quiet_instance_is_one_judge_instance_finds_nothing_for(case: str) -> None:
    inst, bindings = QUIET_CASES[case]()
    rows = bindings or [ovs(P1), ovs(P2)]
    ports = [judged(b) for b in rows]
    # each port stands for its shape by the first row of it: here, P1's
    templates = {}
    for b, j in ports:
        key = tuple(getattr(b, f) for f in VERDICT_FIELDS)
        templates.setdefault(key, PortTemplate.of(b, j))
    shaped = [
        SimpleNamespace(
            port_id=b.port_id, value=templates[tuple(getattr(b, f) for f in VERDICT_FIELDS)]
        )
        for b, _ in ports
    ]
    if case == "quiet":
        assert [p.value.binding.port_id for p in shaped] == [P1, P1]
    found, view = judge_instance(VM, inst, ports, CTX)
    now = datetime.datetime(2026, 11, 30)
    moves = judge_moves(inst, rows, now) if inst is not None else []
    quiet = instance_is_quiet(inst, shaped)
    if quiet:
        assert not found and not view.codes and not moves
    assert quiet == (case == "quiet"), (found, view.codes, moves)
    if case not in ("quiet", "on another host, moving", "cache unknown"):
        assert found or view.codes or moves  # judged in full, it has something to say


@pytest.mark.parametrize("vif_type", ["ovs", "vhostuser", "bridge"])
def test_a_cache_matches_its_expectation_exactly_when_it_shows_no_difference(vif_type):
    """CacheExpectation.matches (the quiet instances' test, once per VM port) is
    ``cache_differences(...) == []`` for JSON values of every kind in every field."""
    from vifdoctor.rules.nova import CacheExpectation

    details = '{"port_filter": true, "ovs_hybrid_plug": true, "vhostuser_ovs_plug": true}'
    b = ovs(vif_type=vif_type, details=details)
    want = CacheExpectation.of(b)
    parsed = {"port_filter": True, "ovs_hybrid_plug": True, "vhostuser_ovs_plug": True}
    values: dict[str, list[Any]] = {
        "type": [vif_type, "ovs", "other", None, 1, True],
        "devname": [expected_devname(P1), None, "tap", expected_devname(P1) + "x", 0, [], False],
        "ovs_interfaceid": [P1, None, "", P2, 1.0, {}],
        "details": [parsed, {}, None, [], {"port_filter": 1, "ovs_hybrid_plug": 1.0}, "x"],
    }
    seen = set()
    for field, options in values.items():
        for option in options:
            for missing in (False, True):
                cached = {"id": P1, "type": vif_type, "devname": None, "ovs_interfaceid": P1}
                cached["details"] = dict(parsed)
                if missing:
                    del cached[field]
                else:
                    cached[field] = option
                same = cache_differences(b, cached) == []
                assert want.matches(cached, P1) is same, (field, option, missing)
                seen.add(same)
    assert seen == {True, False}
