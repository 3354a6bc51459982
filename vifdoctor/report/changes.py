"""Plans and repair outcomes as listings, and what the database change leaves to do."""

from __future__ import annotations

import dataclasses
import operator
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence

from vifdoctor import __version__
from vifdoctor.model import Change
from vifdoctor.report import Column, Listing
from vifdoctor.results import ChangeReport, Results, result_of
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


def fields_of(changes: Sequence[Change], *names: str) -> Iterable[tuple]:
    """These fields (two or more) of each change, as tuples: from the plan's records
    where it offers them (``columns``: a plan spooled by vifdoctor.repair.changespool),
    with no Change made per row for it."""
    columns = getattr(changes, "columns", None)
    return columns(*names) if columns is not None else map(operator.attrgetter(*names), changes)


_REPLUG_FIELDS = ("host", "device_owner", "device_id", "action", "plug_before", "plug_after")


def replug_by_host(changes: Sequence[Change]) -> dict[str, dict[str, list[str]]]:
    """Per host, the VMs whose wiring must change, and those that only need a cache refresh."""
    hosts: dict[str, dict[str, dict[str, None]]] = defaultdict(
        lambda: {"replug": {}, "refresh": {}}
    )  # dicts as ordered sets
    for host, owner, device_id, action, before, after in fields_of(changes, *_REPLUG_FIELDS):
        if not owner.startswith("compute:") or not device_id or action != "rewrite":
            continue
        hosts[host]["replug" if before != after else "refresh"][device_id] = None
    return {h: {k: list(v) for k, v in hosts[h].items()} for h in sorted(hosts)}


def next_steps(
    changes: Sequence[Change],
    summary: bool = False,
    replug: dict[str, dict[str, list[str]]] | None = None,
) -> list[str]:
    """What a fixed row does not do by itself: Nova re-reads details only on a re-plug.

    ``summary``: counts per host instead of one command per VM (a large repair).
    ``replug``: :func:`replug_by_host` of these changes, when already computed.
    """
    plan = replug_by_host(changes) if replug is None else replug
    if not plan:
        return []
    lines = ["", "The database change alone does not re-wire running VMs. Per host:"]
    for host, vms in plan.items():
        shown = terminal_safe(host)
        if summary:
            lines.append(
                f"  {shown}: {len(vms['replug'])} VM(s) to re-plug (hard reboot or "
                f"stop/start), {len(vms['refresh'])} to refresh Nova's cache"
            )
            continue
        if vms["replug"]:
            lines.append(
                f"  {shown}: re-plug (hard reboot or stop/start) before the wiring "
                f"follows the new details:"
            )
            lines.extend(_reboot(vm) for vm in vms["replug"])
        if vms["refresh"]:
            lines.append(
                f"  {shown}: wiring unchanged; refresh Nova's cache "
                f"({len(vms['refresh'])} VM(s)): "
                + " ".join(command(vm) or repr(terminal_safe(vm)) for vm in vms["refresh"])
            )
    lines.append(
        "Nova's instance_info_caches keep the old details until a network-changed "
        "event, start or hard reboot refreshes them. For the exact per-instance plan "
        "(stopped VMs, VMs still wired hybrid, stale caches): `vifdoctor remediation "
        "--nova-db URL [--host-reports DIR]`."
    )
    return lines


def _restore_command(backup: str) -> str:
    return command("vifdoctor", "rollback", backup, "--apply") or "vifdoctor rollback BACKUP"


def _reboot(vm: str) -> str:
    """The hard-reboot command for one VM; none for a device_id that is not a UUID."""
    if is_uuid(vm):
        return "    " + (command("openstack", "server", "reboot", "--hard", vm) or "")
    return (
        f"    (no command: device_id {terminal_safe(vm)!r} is not an instance UUID; "
        "check the port by hand)"
    )


class ChangeRows:
    """The changes as listing rows, made as they are read (re-iterable, none held).

    Rendering 100,000 changes as JSON made 100,000 dicts first and held them all;
    made one at a time, each is encoded and freed (issue 14).
    """

    def __init__(self, changes: Sequence[Change], results: dict | None = None):
        self.changes, self.results = changes, results

    def __len__(self) -> int:
        return len(self.changes)

    def __iter__(self) -> Iterator[dict]:
        results = self.results
        if results is None:
            for c in self.changes:
                yield c.as_dict()
            return
        result = result_of(results)
        for c in self.changes:
            row = c.as_dict()
            row["result"], row["current_details"] = result(c)
            yield row


def plan_listing(
    changes: Sequence[Change],
    schema: dict,
    assumptions: list[str],
    extra: dict | None = None,
    results: dict | None = None,
    replug: dict[str, dict[str, list[str]]] | None = None,
) -> Listing:
    """``replug``: :func:`replug_by_host` of ``changes``, when already computed."""
    rows = ChangeRows(changes, results)
    doc = {
        "tool": {"name": "vifdoctor", "version": __version__},
        "schema": schema,
        "assumptions": assumptions,
        **(extra or {}),
        "replug": replug_by_host(changes) if replug is None else replug,
        "changes": rows,
    }
    columns = list(CHANGE_COLUMNS)
    if results is not None:
        columns.insert(3, Column("result", "Result"))
    return Listing(
        columns, rows, doc, rows_key="changes", available=CHANGE_COLUMNS + OTHER_CHANGE_COLUMNS
    )


def _outcome_footer(report: ChangeReport) -> list[str]:
    o = report.outcome or {}
    lines = [
        f"{report.kind}: {o.get('changed', 0)} changed, "
        f"{o.get('skipped', 0)} skipped (changed underneath, left as found), "
        f"{o.get('failed', 0)} failed, {o.get('pending', 0)} not attempted"
        + (f", {o['unknown']} unknown (sent, but could not be re-read)" if o.get("unknown") else "")
        + "; "
        f"{o.get('batches', 0)} batch(es), {o.get('retries', 0)} retried, longest transaction "
        f"{report.longest_transaction_s * 1000:.0f} ms",
        f"Backup: {report.backup}  (restore: {_restore_command(str(report.backup))})",
    ]
    lines += [f"error: {e}" for e in o.get("errors", [])[:5]]
    if o.get("interrupted"):
        lines.append(
            "Interrupted: every finished batch is committed; run the same command "
            "again to finish (it re-plans from the database)."
        )
    return lines


def _moving_lines(report: ChangeReport) -> list[str]:
    """Ports left alone because their instance is moving (or VD206 rows kept for a reason)."""
    skipped = report.extra.get("skipped_moving") or []
    return [
        f"skipped {s['port_id']} on {s['host']} (instance {s['device_id'] or 'none'}): "
        f"{s['reason']}"
        for s in skipped
    ]


def _deletes_footer(report: ChangeReport) -> list[str]:
    """VD206: rows deleted with their binding levels, not rewritten."""
    n = len(report.changes)
    if report.applied:
        o = report.outcome or {}
        return (
            _moving_lines(report)
            + [
                f"{report.kind}: {o.get('deleted', 0)} deleted, {o.get('skipped', 0)} skipped "
                f"(changed underneath, or a move started since the plan), {o.get('failed', 0)} "
                f"failed, {o.get('pending', 0)} not attempted; {o.get('batches', 0)} batch(es), "
                f"Nova re-checked before each ({o.get('nova_rechecks', 0)}), longest transaction "
                f"{report.longest_transaction_s * 1000:.0f} ms",
                f"Backup: {report.backup}  (restore: vifdoctor rollback {report.backup} --apply)",
            ]
            + [f"error: {e}" for e in o.get("errors", [])[:5]]
        )
    return _moving_lines(report) + [
        f"{n} stale INACTIVE binding row(s) to delete, with their binding levels (VD206). "
        "Nothing was written: `vifdoctor repair --code VD206 --apply` deletes them, with a "
        "backup, re-checking Nova before each batch."
    ]


def _footer(
    report: ChangeReport,
    summary: bool = False,
    replug: dict[str, dict[str, list[str]]] | None = None,
) -> list[str]:
    """The lines a table ends with: what was (or would be) written, and what is left to do.

    ``replug``: :func:`replug_by_host` of ``report.changes``, when already computed.
    """
    n = len(report.changes)

    def steps(changes: Sequence[Change]) -> list[str]:
        # A database repair's done rows are some of its changes, in order: as many is all.
        same = changes is report.changes or (
            report.kind == "repair" and len(changes) == len(report.changes)
        )
        return next_steps(changes, summary, replug if same else None)

    if report.kind in ("plan", "repair") and report.extra.get("codes") == ["VD206"]:
        return _deletes_footer(report)
    if report.extra.get("skipped_moving"):
        return _moving_lines(report) + _footer(
            dataclasses.replace(report, extra={**report.extra, "skipped_moving": []}),
            summary,
            replug,
        )
    if report.kind == "plan":
        codes = ", ".join(report.extra.get("codes", []))
        return [
            f"{n} binding row(s) to change ({codes}). Nothing was written: "
            "`vifdoctor repair --apply` writes them, with a backup."
        ] + steps(report.changes)
    if report.kind == "rollback" and report.changes and report.changes[0].action == "restore":
        o = report.outcome or {}
        if report.applied:
            return [
                f"rollback: {o.get('restored', 0)} row(s) re-inserted with their binding "
                f"levels, {o.get('skipped', 0)} skipped (a row took their place), "
                f"{o.get('failed', 0)} failed"
            ] + [f"error: {e}" for e in o.get("errors", [])[:5]]
        return [
            f"{report.restorable} of {n} deleted row(s) can be re-inserted; the others "
            "have a binding row again or lost their port and are not touched.",
            "Dry run: nothing was written. Add --apply to restore.",
        ]
    if report.kind == "rollback":
        if report.applied:
            return _outcome_footer(report)
        return [
            f"{report.restorable} of {n} row(s) still hold the value vifdoctor wrote "
            "and can be restored; the others changed since and are not touched.",
            "Nothing to restore."
            if report.extra.get("applied")
            else "Dry run: nothing was written. Add --apply to restore.",
        ]
    if report.kind == "api-repair":
        if not report.applied:
            note = (
                f"Dry run: nothing was changed. Add --apply to have Neutron re-bind them "
                f"(method {report.extra.get('method')}), with a backup."
                if report.restorable
                else "Nothing to repair."
            )
            return [
                f"{report.restorable} port(s) to re-bind through the API; the new details "
                "are what vifdoctor expects, the mechanism driver writes its own.",
                note,
            ]
        o = report.outcome or {}
        return (
            [
                f"repair through the API: {o.get('rebound', 0)} re-bound, "
                f"{o.get('skipped', 0)} skipped (changed underneath or no live agent), "
                f"{o.get('failed', 0)} failed, {o.get('not attempted', 0)} not attempted",
                f"Backup of every port's attributes before the change: {report.backup}",
            ]
            + report.messages
            + steps(report.done)
        )
    if report.applied:
        return _outcome_footer(report) + steps(report.done)
    note = (
        "Dry run: nothing was written. Add --apply to write, with a backup."
        if n
        else "Nothing to repair."
    )
    return [f"{n} binding row(s) to change.", note] + steps(report.changes)


#: Past this many rows a table shows a summary by host and codes, unless asked for all.
SUMMARY_THRESHOLD = 1000
SUMMARY_COLUMNS = [
    Column("host", "Host"),
    Column("codes", "Codes"),
    Column("result", "Result"),
    Column("rows", "Rows"),
]


def change_listing(report: ChangeReport, summary: bool = False, footer: bool = True) -> Listing:
    """A plan, repair or rollback as a listing, with its footer.

    ``summary`` (a table, unless --all-rows): past SUMMARY_THRESHOLD rows the table
    counts rows by host, codes and result instead of listing each, so rendering a
    100,000-row repair does not cost more than the repair (issue 14); the document
    (-f json/yaml) and csv/value rows always list every row. ``footer=False``: no
    footer (only a table shows one; its per-VM commands cost as much as the rows).
    """
    replug = replug_by_host(report.changes)  # for the document and the footer: once
    listing = plan_listing(
        report.changes, report.schema, report.assumptions, report.extra, report.results, replug
    )
    too_long = _too_long_lines(report)
    if not summary or len(report.changes) <= SUMMARY_THRESHOLD:
        listing.footer = too_long + _footer(report, replug=replug) if footer else []
        return listing
    listing.rows = _summary_rows(report)
    listing.columns = [
        c for c in SUMMARY_COLUMNS if c.key != "result" or report.results is not None
    ]
    listing.available = listing.columns
    listing.footer = (
        too_long
        + [
            f"{len(report.changes)} rows, summarized by host (more than "
            f"{SUMMARY_THRESHOLD}): --all-rows lists each, -f json writes every row."
        ]
        + _footer(report, summary=True, replug=replug)
    )
    return listing


def _summary_rows(report: ChangeReport) -> list[dict]:
    """Rows counted by host, codes and result, from the changes themselves (no row dict
    made per change: that was most of a summary's cost at 100,000 rows, issue 14)."""
    changes, results = report.changes, report.results
    # One pass over the changes (a plan spooled on disk is read once), with C getters
    # where every row has the same result: a pass in Python per row cost 0.1-0.3 s at
    # 100,000
    alike = isinstance(results, Results) and not results and isinstance(results.default, tuple)
    keys: Iterable[tuple[tuple[str, tuple[str, ...], str], int]]
    if results is None or alike:
        state = results.default[0] if isinstance(results, Results) and alike else ""  # type: ignore[index]
        counts = Counter(fields_of(changes, "host", "codes"))
        keys = (((h, c, state), n) for (h, c), n in counts.items())
    else:
        assert results is not None
        result = result_of(results)
        keys = Counter((c.host, c.codes, result(c)[0]) for c in changes).items()
    counted: Counter[tuple[str, str, str]] = Counter()
    for (host, codes, state), n in keys:
        counted[(host or "", ",".join(codes), state or "")] += n
    return [
        {"host": h, "codes": c, "result": r, "rows": n} for (h, c, r), n in sorted(counted.items())
    ]


def _too_long_lines(report: ChangeReport) -> list[str]:
    """The rows left out because their new value would not fit the column."""
    return [
        f"not planned: port {terminal_safe(r['port_id'])} on {terminal_safe(r['host'])}: "
        f"the new details are {r['new_length']} characters, the column holds "
        f"{r['column_length']}; fix this row by hand"
        for r in report.extra.get("not_planned_too_long", [])
    ]
