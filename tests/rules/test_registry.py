"""The rule registry: every code declared once, documented, and a new rule is one function."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vifdoctor import api
from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Agent, Binding, Severity
from vifdoctor.repair.plan import plan_change, repair_codes
from vifdoctor.rules import registry
from vifdoctor.rules.binding import BindingCase, judge_binding
from vifdoctor.rules.catalog import CATALOG, markdown_table
from vifdoctor.rules.finding import new_finding
from vifdoctor.rules.plug import RuleContext

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"README.md": ROOT / "README.md", "docs/rules.md": ROOT / "docs" / "rules.md"}
CODE = re.compile(r"\bVD\d{3}\b")


@pytest.mark.parametrize("doc", sorted(DOCS))
def test_every_declared_code_is_documented_and_every_documented_code_declared(doc):
    text = DOCS[doc].read_text()
    documented = set(CODE.findall(text))
    assert set(CATALOG) - documented == set(), f"declared but not in {doc}"
    assert documented - set(CATALOG) == set(), f"in {doc} but declared nowhere"


@pytest.mark.parametrize(("doc", "full"), [("README.md", False), ("docs/rules.md", True)])
def test_the_docs_tables_are_the_declarations(doc, full):
    text = DOCS[doc].read_text()
    assert markdown_table(full) in text, f"run scripts/update-rules-tables ({doc})"


def test_catalog_derivatives_come_from_declarations():
    assert registry.repairable() == {c for c, r in CATALOG.items() if r.correction or r.deletes_row}
    assert {c for c, r in CATALOG.items() if r.deletes_row} == {"VD206"}
    assert registry.repairable_by_default() == {"VD101", "VD103"}
    assert registry.repair_vif_types({"VD101", "VD103"}) == {"ovs", "bridge"}
    assert registry.repair_vif_types({"VD110"}) == {"ovs"}
    assert [i.code for i in api.explain("vd102", "VD101")] == ["VD102", "VD101"]


def test_a_code_cannot_be_declared_twice_nor_repaired_without_a_correction():
    scope = registry.Scope(registry.VM_PORT_PLUG)
    with pytest.raises(ValueError, match="twice"):
        registry.declare(
            "VD101", Severity.INFO, "again", why="", impact="", remedy="", applies_to=scope
        )
    with pytest.raises(ValueError, match="no correction"):
        registry.declare(
            "VD998",
            Severity.INFO,
            "x",
            why="",
            impact="",
            remedy="",
            applies_to=scope,
            repair_by_default=True,
        )
    assert "VD998" not in CATALOG


@pytest.fixture
def vd113():
    """A new rule, as a contributor would add it: one function and its declaration."""

    def fix(details, needs, ctx):
        return {"set": {"connectivity": "l2"}, "remove": []}

    @registry.rule(
        "VD113",
        Severity.WARNING,
        "connectivity missing",
        why="w",
        impact="i",
        remedy="r",
        summary="s",
        applies_to=registry.Scope(
            registry.VM_PORT_PLUG, vif_types=frozenset({"ovs"}), device_owners=("compute:",)
        ),
        correction=fix,
    )
    def connectivity_missing(case: BindingCase):
        if case.needs is None or "connectivity" in case.stored:
            return []
        f = fix(case.stored, case.needs, case.ctx)
        return [new_finding("VD113", case.b, "no connectivity key", correction=f)]

    try:
        yield
    finally:
        del registry.REGISTRY["VD113"]


def _vm_binding(details: str, vif_type: str = "ovs") -> Binding:
    return Binding(
        port_id="p1",
        host="h1",
        vif_type=vif_type,
        vif_details=details,
        device_owner="compute:nova",
        device_id="i1",
        status="ACTIVE",
    )


AGENTS = [
    Agent(
        id="a1",
        agent_type="Open vSwitch agent",
        host="h1",
        alive=True,
        admin_state_up=True,
        configurations={"ovs_hybrid_plug": False},
    )
]


def test_a_new_rule_is_judged_explained_and_repaired_with_no_other_edit(vd113):
    ctx = RuleContext()
    details = '{"port_filter": true, "ovs_hybrid_plug": false}'
    j = judge_binding(_vm_binding(details), AGENTS, ctx)
    assert [f.code for f in j.findings] == ["VD113"]
    assert (
        j.findings[0].severity is Severity.WARNING and j.findings[0].title == "connectivity missing"
    )
    # out of its declared scope (a DHCP port), the engine never asks it
    dhcp = _vm_binding(details)
    dhcp.device_owner = "network:dhcp"
    assert judge_binding(dhcp, AGENTS, ctx).findings == []
    assert api.explain("VD113")[0].why == "w"
    assert "VD113" in repair_codes(["VD113"])
    change = plan_change(_vm_binding(details), j, frozenset({"VD113"}), ctx)
    assert change is not None and '"connectivity": "l2"' in change.new


def test_vd408_is_repaired_only_by_a_rebind_through_the_api():
    """No database rewrite fixes requested-chassis; a re-bind through Neutron's API does
    (the OVN driver rewrites the LSP): the database path refuses it in one line."""
    with pytest.raises(VifdoctorError) as refused:
        repair_codes(["VD408"])
    assert "VD408 only by a re-bind through the API, --os-cloud" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert repair_codes(["VD408", "VD404"], rebind=True) == {"VD408", "VD404"}
    with pytest.raises(VifdoctorError):
        repair_codes(["VD409"], rebind=True)
