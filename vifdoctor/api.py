"""vifdoctor's public Python API: what the command line, the plugins and automation call.

Each function takes an options dataclass (:mod:`vifdoctor.options`) or the
same keyword arguments as the CLI's long flags, and returns the report object
the CLI renders::

    from vifdoctor import api

    report = api.audit(neutron_db="mysql+pymysql://neutron:PW@db/neutron", host=["c1"])
    print(report.summary()["by_code"], report.exit_code)
    for finding in report.findings:      # dicts, streamed from disk
        ...

Errors the operator must fix raise :class:`vifdoctor.errors.VifdoctorError`
(one line, never a password). docs/api.md documents every call.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from vifdoctor.audit import audit_cloud
from vifdoctor.errors import VifdoctorError
from vifdoctor.export import ExportOptions, export_bundle
from vifdoctor.options import AuditOptions, RepairOptions, RollbackOptions
from vifdoctor.repair.hooks import Hooks
from vifdoctor.results import AuditReport, ChangeReport
from vifdoctor.rules.catalog import CATALOG, CodeInfo
from vifdoctor.sources.interface import HostWiringSource
from vifdoctor.sources.neutron_api import given_connection

__all__ = [
    "AuditOptions",
    "RepairOptions",
    "RollbackOptions",
    "Hooks",
    "AuditReport",
    "ChangeReport",
    "VifdoctorError",
    "audit",
    "remediation",
    "plan",
    "plan_sql",
    "repair",
    "rollback",
    "explain",
    "openstack_connection",
    "export",
    "ExportOptions",
]


def audit(
    options: AuditOptions | None = None,
    /,
    *,
    host_source: HostWiringSource | None = None,
    **kwargs: Any,
) -> AuditReport:
    """Judge every binding (and, with Nova, every instance); read-only.

    ``host_source`` gives the hosts' live wiring from elsewhere than the
    ``host_reports`` folder (any :class:`~vifdoctor.sources.interface.HostWiringSource`).
    """
    return audit_cloud(AuditOptions.of(options, **kwargs), host_source)


def remediation(
    options: AuditOptions | None = None,
    /,
    *,
    host_source: HostWiringSource | None = None,
    **kwargs: Any,
) -> AuditReport:
    """The audit, with Nova required: its ``instances`` carry each VM's remediation steps."""
    opts = AuditOptions.of(options, **kwargs)
    report = audit_cloud(opts, host_source)
    if report.nova is None:
        raise VifdoctorError(
            "remediation needs Nova's database: pass --nova-db URL (per cell), "
            "--nova-api-db URL or --nova-config-file FILE"
        )
    return report


def export(options: ExportOptions | None = None, /, **kwargs: Any) -> dict:
    """Copy what the audit reads into the SQLite bundle ``output``; returns its manifest."""
    return export_bundle(ExportOptions.of(options, **kwargs))


def plan(options: RepairOptions | None = None, /, **kwargs: Any) -> ChangeReport:
    """The exact binding rows a repair would change, from what text to what (read-only)."""
    from vifdoctor.repair import workflow  # only where a repair runs: not an audit's start-up

    return workflow.plan(RepairOptions.of(options, **kwargs))


def plan_sql(options: RepairOptions | None = None, /, **kwargs: Any) -> list[str]:
    """The plan as guarded SQL statements for a DBA, one batch per transaction."""
    from vifdoctor.repair import workflow  # only where a repair runs: not an audit's start-up

    return workflow.plan_sql(RepairOptions.of(options, **kwargs))


def repair(
    options: RepairOptions | None = None, /, *, hooks: Hooks | None = None, **kwargs: Any
) -> ChangeReport:
    """Rewrite the flagged rows; a dry run unless ``apply=True``. Backed up and guarded."""
    from vifdoctor.repair import workflow  # only where a repair runs: not an audit's start-up

    return workflow.repair(RepairOptions.of(options, **kwargs), hooks)


def rollback(
    backup: str,
    options: RollbackOptions | None = None,
    /,
    *,
    hooks: Hooks | None = None,
    **kwargs: Any,
) -> ChangeReport:
    """Restore a repair's backup file; a dry run unless ``apply=True``."""
    from vifdoctor.repair import workflow  # only where a repair runs: not an audit's start-up

    return workflow.rollback(backup, RollbackOptions.of(options, **kwargs), hooks)


def explain(*codes: str) -> list[CodeInfo]:
    """The declarations of these finding codes (all when none is named)."""
    wanted = [c.strip().upper() for c in codes] or sorted(CATALOG)
    unknown = [c for c in wanted if c not in CATALOG]
    if unknown:
        raise VifdoctorError(
            f"unknown code(s) {', '.join(unknown)} (known: {', '.join(sorted(CATALOG))})"
        )
    return [CATALOG[c] for c in wanted]


def openstack_connection(conn: Any) -> AbstractContextManager[None]:
    """Within this block, API mode uses ``conn`` (an authenticated openstacksdk Connection).

    For front ends that authenticate themselves, as the openstack client plugin does;
    pass ``os_cloud`` (any name: it only labels messages) so API mode is chosen.
    """
    return given_connection(conn)
