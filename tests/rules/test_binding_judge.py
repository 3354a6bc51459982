"""BindingJudge: a run's judge remembers clean row shapes, never findings (issue 14).

The memo must not change any answer: a row like a clean one is clean with the same
category; a drifted row is judged in full every time, so each finding names its own
port; anything a rule reads (host's agents, texts, status, driver, owner) is in the key.
"""

from __future__ import annotations

from collections.abc import Iterator

from testkit.cloudfactory import binding, legacy_ovs, reporting_ovs

from vifdoctor.model import Binding
from vifdoctor.rules.binding import JUDGED, BindingJudge, Judgement, judge_binding
from vifdoctor.rules.plug import RuleContext

CTX = RuleContext()


def test_clean_shape_is_remembered_with_its_category() -> None:
    judge = BindingJudge(CTX)
    agents = [legacy_ovs()]
    first = judge(binding(port_id="p-1"), agents)
    second = judge(binding(port_id="p-2", device_id="vm-2", network_id="n-2"), agents)
    assert first.findings == second.findings == []
    assert first.category == second.category == JUDGED
    assert len(judge.clean) == 1
    dhcp = judge(binding(port_id="p-3", device_owner="network:dhcp"), agents)
    assert (
        dhcp.category == judge_binding(binding(device_owner="network:dhcp"), agents, CTX).category
    )
    assert len(judge.clean) == 2


def test_drifted_rows_are_judged_each_time_and_name_their_port() -> None:
    judge = BindingJudge(CTX)
    agents = [legacy_ovs()]
    found = [judge(binding(port_id=f"p-{n}", vif_details=""), agents) for n in range(3)]
    assert [sorted(f.code for f in j.findings) for j in found] == [["VD101", "VD103"]] * 3
    assert [{f.port_id for f in j.findings} for j in found] == [{"p-0"}, {"p-1"}, {"p-2"}]
    assert judge.clean == {}


def test_the_key_holds_what_the_rules_read() -> None:
    """A clean shape on one host says nothing about another host's agents, or other text."""
    judge = BindingJudge(CTX)
    assert judge(binding(host="compute1"), [legacy_ovs("compute1")]).findings == []
    # the same hybrid details on an openvswitch-firewall host: VD102 (hybrid not wanted)
    other = judge(binding(host="compute2"), [reporting_ovs(False, "compute2")])
    assert [f.code for f in other.findings] == ["VD102"]
    assert len(judge.clean) == 1
    inactive = judge(
        binding(host="compute1", status="INACTIVE", has_active_row=False), [legacy_ovs("compute1")]
    )
    assert inactive.category == "inactive binding"


def test_a_join_adding_findings_never_changes_the_shared_clean_verdict() -> None:
    """Rows alike share one clean Judgement: a join's findings for one row (a host scan's,
    say) must stay that row's, not show up on every later row of its shape."""
    from vifdoctor.audit import run_audit
    from vifdoctor.rules.finding import declared_finding

    class OneEach:
        live: dict[str, str] = {}

        def judge(self, b, judgement, agents, ctx):  # type: ignore[no-untyped-def]
            assert judgement.findings == [], "another row's join finding leaked in"
            return [declared_finding("VD301", f"seen {b.port_id}", port_id=b.port_id)]

        def finish(self):  # type: ignore[no-untyped-def]
            return []

    rows = [binding(port_id=f"p-{n}", device_id=f"vm-{n}") for n in range(3)]
    report = run_audit(
        rows, {"compute1": [legacy_ovs()]}, CTX, schema={}, assumptions=[], joins=[OneEach()]
    )
    assert report.by_code == {"VD301": 3}
    assert [r["port_id"] for r in report.findings] == ["p-0", "p-1", "p-2"]


def test_clean_verdicts_are_kept_by_the_sources_shape_too() -> None:
    """by_shape: what a source hands back instead of building a row (issue 14); only
    clean verdicts, only for rows that came with a shape."""
    judge = BindingJudge(CTX)
    agents = [legacy_ovs()]
    clean = judge(binding(port_id="p-1", shape=b"clean"), agents)
    judge(binding(port_id="p-2", vif_details="", shape=b"drifted"), agents)
    judge(binding(port_id="p-3"), agents)  # no shape: the tuple memo only
    # another source shape of a clean tuple already known: kept as well
    judge(binding(port_id="p-4", shape=b"clean too"), agents)
    assert judge.by_shape == {b"clean": clean, b"clean too": clean}


def test_run_audit_counts_the_rows_a_source_gave_back_as_verdicts() -> None:
    """A row handed back as its shape's clean Judgement is counted like a judged one; with
    a join, which must see every row, nothing is put in the source's table."""
    from vifdoctor.audit import run_audit

    class Seen:
        live: dict[str, str] = {}

        def judge(self, b, judgement, agents, ctx):  # type: ignore[no-untyped-def]
            return []

        def finish(self):  # type: ignore[no-untyped-def]
            return []

    agents = {"compute1": [legacy_ovs()]}
    for joins, expected in (([], 1), ([Seen()], 0)):
        table: dict[bytes, Judgement] = {}

        def rows(table: dict[bytes, Judgement] = table) -> Iterator[Binding | Judgement]:
            yield binding(port_id="p-1", shape=b"s")
            yield from [table.get(b"s") or binding(port_id="p-2", shape=b"s")] * 3

        report = run_audit(
            rows(), agents, CTX, schema={}, assumptions=[], joins=joins, clean_shapes=table
        )
        assert len(table) == expected
        assert report.rows == 4 and report.categories == {JUDGED: 4} and not report.findings
