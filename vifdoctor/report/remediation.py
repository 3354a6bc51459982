"""The remediation plan as a listing: steps per host, in the order to do them."""

from __future__ import annotations

from collections import defaultdict

from vifdoctor import __version__
from vifdoctor.report import Column, Listing
from vifdoctor.results import AuditReport

STEP_COLUMNS = [
    Column("host", "Host"),
    Column("action", "Action"),
    Column("instance", "Instance"),
    Column("command", "Command"),
    Column("reason", "Reason"),
]


def remediation_listing(
    report: AuditReport, repair_command: str = "vifdoctor repair --apply"
) -> Listing:
    """One repair of every binding first, then each host's steps in order."""
    steps = [
        step
        for inst in report.instances
        for step in inst["steps"]
        if step["action"] != "repair-binding"
    ]
    steps.sort(key=lambda s: (s["host"], s["order"], s["instance"]))
    to_repair = sum(
        1
        for inst in report.instances
        for step in inst["steps"]
        if step["action"] == "repair-binding"
    )
    if to_repair:
        steps.insert(
            0,
            {
                "order": 1,
                "action": "repair-binding",
                "instance": "",
                "host": "(all hosts)",
                "command": repair_command,
                "reason": f"first: fix the bindings of {to_repair} instance(s); Nova "
                "re-reads them at the re-plug ( `vifdoctor plan` shows the "
                "rows)",
            },
        )
    by_host: dict[str, list[dict]] = defaultdict(list)
    for step in steps:
        by_host[step["host"] or "(no host)"].append(step)
    doc = {
        "tool": {"name": "vifdoctor", "version": __version__},
        "schema": report.schema,
        "nova": report.nova,
        "assumptions": report.assumptions,
        "summary": {
            "instances_affected": len(report.instances),
            "steps": len(steps),
            "by_action": _count(steps, "action"),
            "hosts": len(by_host),
        },
        "hosts": dict(sorted(by_host.items())),
        "instances": report.instances,
        "steps": steps,
    }
    footer = [
        "",
        f"{len(report.instances)} affected instance(s), {len(steps)} step(s) on "
        f"{len(by_host)} host(s). Repair the bindings first (one command for all: "
        "`vifdoctor repair --apply`), then work host by host.",
        "A stopped VM needs nothing more: its next start re-plugs from the fixed "
        "details. Wiring is inferred from Nova's cache, as far as the database can tell.",
    ]
    return Listing(STEP_COLUMNS, steps, doc, rows_key="steps", footer=footer, report=report)


def _count(rows: list[dict], key: str) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row[key]] += 1
    return dict(sorted(counts.items()))
