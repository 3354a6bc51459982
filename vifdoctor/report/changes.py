"""Plans and repair outcomes as listings, and what the database change leaves to do."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from vifdoctor import __version__
from vifdoctor.model import Change
from vifdoctor.report import Column, Listing
from vifdoctor.results import ChangeReport
from vifdoctor.shell import command, is_uuid, terminal_safe

CHANGE_COLUMNS = [
    Column("port_id", "Port"),
    Column("host", "Host"),
    Column("codes", "Codes"),
    Column("stored_details", "Stored Details"),
    Column("new_details", "New Details"),
]
OTHER_CHANGE_COLUMNS = [
    Column("device_id", "Device"),
    Column("device_owner", "Device Owner"),
    Column("status", "Status"),
    Column("nova_plug_before", "Plug Before"),
    Column("nova_plug_after", "Plug After"),
    Column("replug_needed", "Replug Needed"),
    Column("result", "Result"),
    Column("current_details", "Current Details"),
]


def replug_by_host(changes: Sequence[Change]) -> dict[str, dict[str, list[str]]]:
    """Per host, the VMs whose wiring must change, and those that only need a cache refresh."""
    hosts: dict[str, dict[str, dict[str, None]]] = defaultdict(
        lambda: {"replug": {}, "refresh": {}})  # dicts as ordered sets
    for c in changes:
        if not c.device_owner.startswith("compute:") or not c.device_id:
            continue
        hosts[c.host]["replug" if c.replug_needed else "refresh"][c.device_id] = None
    return {h: {k: list(v) for k, v in hosts[h].items()} for h in sorted(hosts)}


def next_steps(changes: Sequence[Change]) -> list[str]:
    """What a fixed row does not do by itself: Nova re-reads details only on a re-plug."""
    plan = replug_by_host(changes)
    if not plan:
        return []
    lines = ["", "The database change alone does not re-wire running VMs. Per host:"]
    for host, vms in plan.items():
        shown = terminal_safe(host)
        if vms["replug"]:
            lines.append(f"  {shown}: re-plug (hard reboot or stop/start) before the wiring "
                         f"follows the new details:")
            lines.extend(_reboot(vm) for vm in vms["replug"])
        if vms["refresh"]:
            lines.append(f"  {shown}: wiring unchanged; refresh Nova's cache "
                         f"({len(vms['refresh'])} VM(s)): "
                         + " ".join(command(vm) or repr(terminal_safe(vm))
                                    for vm in vms["refresh"]))
    lines.append("Nova's instance_info_caches keep the old details until a network-changed "
                 "event, start or hard reboot refreshes them. For the exact per-instance plan "
                 "(stopped VMs, VMs still wired hybrid, stale caches): `vifdoctor remediation "
                 "--nova-db URL [--host-reports DIR]`.")
    return lines


def _restore_command(backup: str) -> str:
    return command("vifdoctor", "rollback", backup, "--apply") or "vifdoctor rollback BACKUP"


def _reboot(vm: str) -> str:
    """The hard-reboot command for one VM; none for a device_id that is not a UUID."""
    if is_uuid(vm):
        return "    " + (command("openstack", "server", "reboot", "--hard", vm) or "")
    return (f"    (no command: device_id {terminal_safe(vm)!r} is not an instance UUID; "
            "check the port by hand)")


def plan_listing(changes: Sequence[Change], schema: dict, assumptions: list[str],
                 extra: dict | None = None, results: dict | None = None) -> Listing:
    rows = []
    for c in changes:
        row = c.as_dict()
        if results is not None:
            state, current = results.get((c.port_id, c.host), ("pending", None))
            row["result"] = state
            row["current_details"] = current
        rows.append(row)
    doc = {
        "tool": {"name": "vifdoctor", "version": __version__},
        "schema": schema,
        "assumptions": assumptions,
        **(extra or {}),
        "replug": replug_by_host(changes),
        "changes": rows,
    }
    columns = list(CHANGE_COLUMNS)
    if results is not None:
        columns.insert(3, Column("result", "Result"))
    return Listing(columns, rows, doc, rows_key="changes",
                   available=CHANGE_COLUMNS + OTHER_CHANGE_COLUMNS)


def _outcome_footer(report: ChangeReport) -> list[str]:
    o = report.outcome or {}
    lines = [
        f"{report.kind}: {o.get('changed', 0)} changed, "
        f"{o.get('skipped', 0)} skipped (changed underneath, left as found), "
        f"{o.get('failed', 0)} failed, {o.get('pending', 0)} not attempted"
        + (f", {o['unknown']} unknown (sent, but could not be re-read)" if o.get("unknown")
           else "") + "; "
        f"{o.get('batches', 0)} batch(es), {o.get('retries', 0)} retried, longest transaction "
        f"{report.longest_transaction_s * 1000:.0f} ms",
        f"Backup: {report.backup}  (restore: {_restore_command(str(report.backup))})",
    ]
    lines += [f"error: {e}" for e in o.get("errors", [])[:5]]
    if o.get("interrupted"):
        lines.append("Interrupted: every finished batch is committed; run the same command "
                     "again to finish (it re-plans from the database).")
    return lines


def _footer(report: ChangeReport) -> list[str]:
    """The lines a table ends with: what was (or would be) written, and what is left to do."""
    n = len(report.changes)
    if report.kind == "plan":
        codes = ", ".join(report.extra.get("codes", []))
        return [f"{n} binding row(s) to change ({codes}). Nothing was written: "
                "`vifdoctor repair --apply` writes them, with a backup."
                ] + next_steps(report.changes)
    if report.kind == "rollback":
        if report.applied:
            return _outcome_footer(report)
        return [f"{report.restorable} of {n} row(s) still hold the value vifdoctor wrote "
                "and can be restored; the others changed since and are not touched.",
                "Nothing to restore." if report.extra.get("applied")
                else "Dry run: nothing was written. Add --apply to restore."]
    if report.kind == "api-repair":
        if not report.applied:
            note = (f"Dry run: nothing was changed. Add --apply to have Neutron re-bind them "
                    f"(method {report.extra.get('method')}), with a backup."
                    if report.restorable else "Nothing to repair.")
            return [f"{report.restorable} port(s) to re-bind through the API; the new details "
                    "are what vifdoctor expects, the mechanism driver writes its own.", note]
        o = report.outcome or {}
        return [f"repair through the API: {o.get('rebound', 0)} re-bound, "
                f"{o.get('skipped', 0)} skipped (changed underneath or no live agent), "
                f"{o.get('failed', 0)} failed, {o.get('not attempted', 0)} not attempted",
                f"Backup of every port's attributes before the change: {report.backup}"
                ] + report.messages + next_steps(report.done)
    if report.applied:
        return _outcome_footer(report) + next_steps(report.done)
    note = ("Dry run: nothing was written. Add --apply to write, with a backup."
            if n else "Nothing to repair.")
    return [f"{n} binding row(s) to change.", note] + next_steps(report.changes)


def _too_long_lines(report: ChangeReport) -> list[str]:
    """The rows left out because their new value would not fit the column."""
    return [f"not planned: port {terminal_safe(r['port_id'])} on {terminal_safe(r['host'])}: "
            f"the new details are {r['new_length']} characters, the column holds "
            f"{r['column_length']}; fix this row by hand"
            for r in report.extra.get("not_planned_too_long", [])]


def change_listing(report: ChangeReport) -> Listing:
    """A plan, repair or rollback as a listing, with its footer."""
    listing = plan_listing(report.changes, report.schema, report.assumptions, report.extra,
                           report.results)
    listing.footer = _too_long_lines(report) + _footer(report)
    return listing
