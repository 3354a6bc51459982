"""The audit's findings as a listing: which columns a table shows, and the footer."""

from __future__ import annotations

from vifdoctor.ovn_join import migration_footer
from vifdoctor.report import Column, Listing
from vifdoctor.results import AuditReport

FINDING_COLUMNS = [
    Column("code", "Code"),
    Column("severity", "Severity"),
    Column("port_id", "Port"),
    Column("host", "Host"),
    Column("device_id", "Device"),
    Column("nova_plug", "Nova Plug"),
    Column("needed_plug", "Needs"),
    Column("message", "Problem"),
]
# Shown by -c (and in csv/value) but not in the default table: they are long.
OTHER_COLUMNS = [
    Column("device_owner", "Device Owner"),
    Column("title", "Title"),
    Column("network_id", "Network"),
    Column("project_id", "Project"),
    Column("vif_type", "VIF Type"),
    Column("vnic_type", "VNIC Type"),
    Column("status", "Status"),
    Column("driver", "Driver"),
    Column("stored_details", "Stored Details"),
    Column("expected_details", "Expected Details"),
    Column("impact", "Impact"),
    Column("remedy", "Remedy"),
]


def audit_listing(report: AuditReport) -> Listing:
    doc = report.document()
    summary = doc["summary"]
    footer = [
        "",
        f"Schema: {report.schema.get('layout')} ({report.schema.get('description')})",
        f"Bindings read: {summary['bindings']}, judged: {summary['judged']}, "
        f"findings: {summary['findings']} "
        + ", ".join(f"{k}={v}" for k, v in summary["by_severity"].items()),
    ]
    if summary["by_code"]:
        footer.append("By code: " + ", ".join(f"{k} {v}" for k, v in summary["by_code"].items()))
    for category, count in summary["skipped"].items():
        footer.append(f"Not judged: {count} x {category}")
    if report.ovn is not None:
        footer.extend(migration_footer(report.ovn))
    footer.append("Assumptions:")
    footer.extend(f"  - {a}" for a in report.assumptions)
    if summary["by_code"]:
        footer.append(
            "`vifdoctor explain CODE` says what a code means, its impact and remedy; "
            "`-f json` gives every field."
        )
    return Listing(
        FINDING_COLUMNS,
        doc["findings"],
        doc,
        footer=footer,
        available=FINDING_COLUMNS + OTHER_COLUMNS,
        report=report,
    )
