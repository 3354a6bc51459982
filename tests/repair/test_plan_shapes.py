"""The repair's plan judges each row shape once (issue 14) and still plans every row.

``judge_all(shapes=True)`` lets rows alike share one Judgement and ``plan_changes``
then reuses the computed new text and plugs: the plan must equal, change for change,
the plan made with every row judged on its own.
"""

from __future__ import annotations

from testkit.cloudfactory import binding, legacy_ovs, reporting_ovs

from vifdoctor.audit import judge_all
from vifdoctor.repair.plan import plan_changes, repair_codes
from vifdoctor.rules.plug import RuleContext

CTX = RuleContext()


def test_shared_judgements_plan_every_row_as_its_own() -> None:
    agents = {"compute1": [legacy_ovs("compute1")], "compute2": [reporting_ovs(False, "compute2")]}
    rows = [
        binding(
            port_id=f"p-{n}",
            device_id=f"vm-{n}",
            host=f"compute{1 + n % 2}",
            vif_details=["", '{"port_filter": true}', "{}"][n % 3],
        )
        for n in range(12)
    ]
    rows.append(binding(port_id="p-inactive", vif_details="", status="INACTIVE"))
    codes = repair_codes([])
    alone = list(plan_changes(judge_all(rows, agents, CTX), codes, CTX))
    shared = list(plan_changes(judge_all(rows, agents, CTX, shapes=True), codes, CTX))
    assert shared == alone
    assert [(c.port_id, c.device_id, c.binding.port_id) for c in shared] == [
        (c.port_id, c.device_id, c.port_id) for c in alone
    ]
    ports = [c.port_id for c in shared]
    assert len(ports) == len(set(ports)) > 6 and "p-inactive" not in ports
