"""Repair through Neutron itself: make ML2 re-bind each due port so the mechanism driver
writes fresh vif_details from the host agent's current report (no SQL).

``vif_details`` is read-only in the API and a PUT of the same ``binding:host_id`` does
not re-bind (measured on neutron 29.0.0), so a re-bind has to be provoked:

* ``profile`` -- add a ``vifdoctor_rebind`` key to ``binding:profile`` (re-binds on the
  same host), then put the original profile back (re-binds again). The binding never
  leaves its host. Needs the ``service`` role on 2023.2+ policy defaults.
* ``host`` -- ``binding:host_id`` to ``''`` and back: the port is unbound in between,
  so the host's agent unwires it until the second PUT. Admin is enough.
* ``bindings`` -- Rocky+ multiple bindings: an INACTIVE binding on ``--via-host``,
  activate it, delete the original, then the same back. The port is active on another
  host for a while: the most disruptive; only when asked for.

Every PUT is conditional (``If-Match: revision_number=N``): a port changed since the
audit read it is skipped, and an attribute the method touched is always put back.

On ML2/OVN (with ``--ovn-nb-connection``/``--ovn-sb-connection``), the ports with VD404,
VD405 or VD408 are re-bound the same way: the OVN driver then writes the details for the
chassis (``bind_port``) and the LSP (``update_port_postcommit``: requested-chassis from
the binding host), including a vif_type the database repair cannot change. The host
needs a live OVN controller agent, as Neutron lists it, instead of an OVS agent. A port
whose binding profile has ``migrating_to`` (a live migration) is never re-bound.
"""

from __future__ import annotations

import datetime
import json
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from vifdoctor.audit import judge_all
from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Binding, Change, parse_json_column
from vifdoctor.model_ovn import AGENT_CONTROLLER, AGENT_CONTROLLER_GW
from vifdoctor.options import RepairOptions
from vifdoctor.ovn_join import OvnJoin, open_ovn
from vifdoctor.repair.backup import default_dir, write_backup
from vifdoctor.repair.hooks import Hooks
from vifdoctor.repair.plan import plan_change, repair_codes
from vifdoctor.results import ChangeReport
from vifdoctor.rules.binding import Judgement, judge_binding
from vifdoctor.rules.ovn import migrating_to
from vifdoctor.rules.plug import (
    AGENT_LINUXBRIDGE,
    AGENT_OVS,
    VIF_BINDING_FAILED,
    VIF_BRIDGE,
    VIF_UNBOUND,
    RuleContext,
)
from vifdoctor.session import neutron_session
from vifdoctor.settings import Resolved
from vifdoctor.shell import command
from vifdoctor.sources.neutron_api import NeutronApi, stored_details

REBIND_KEY = "vifdoctor_rebind"
RESTORE_TRIES = 5  # failures (not conflicts) before a port is reported left half-way
RESTORE_WAIT_S = 0.5  # times the failures so far: 0.5 + 0.5 + 1 + 1.5 + 2 s in all
#: OVN codes a re-bind fixes even where the database repair cannot (a vif_type that does
#: not fit the chassis, the LSP's requested-chassis): the OVN driver writes the details
#: and the LSP anew. They need NB and SB.
OVN_REBIND_CODES = frozenset({"VD404", "VD405", "VD408"})
OVN_AGENTS = (AGENT_CONTROLLER, AGENT_CONTROLLER_GW)
LSP_CODES = frozenset({"VD408"})  # verified on a fresh NB read after the re-binds
METHODS = ("profile", "host", "bindings")
REBOUND, SKIPPED, FAILED, DUE = "rebound", "skipped", "failed", "would re-bind"
#: What each method does to the port, as measured on neutron 29.0.0 (docs/api-mode.md).
METHOD_EFFECTS = {
    "profile": "binding stays on its host; 2 re-binds; port status DOWN until the agent "
    "reports it up again",
    "host": "port unbound between 2 PUTs (the agent unwires it); port status DOWN until the "
    "agent reports it up again",
    "bindings": "port active on the via host between the steps (dataplane moves away and "
    "back); port status DOWN until the agent reports it up again",
}


class Conflict(Exception):
    """HTTP 412: the port's revision moved (someone else changed it)."""


class LeftHalfWay(RuntimeError):
    """A method changed the port and could not put it back: said whole, with its command."""


class Refused(Exception):
    """HTTP 403: policy does not let this account do it (e.g. binding:profile)."""


@dataclass
class PortResult:
    """What happened to one port, for the report."""

    port_id: str
    host: str
    method: str
    result: str = DUE
    message: str = ""
    status_before: str = ""
    status_after: str = ""
    revision_before: int | None = None
    revision_after: int | None = None
    details_before: Any = None
    details_after: Any = None
    remaining: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Rebinder:
    """Re-binds ports through one Neutron API, with conditional updates."""

    def __init__(
        self,
        api: NeutronApi,
        agents: dict,
        ctx: RuleContext,
        codes: frozenset[str],
        method: str = "auto",
        via_host: str | None = None,
        ovn: OvnJoin | None = None,
        ovn_ports: frozenset[str] = frozenset(),
    ):
        self.api = api
        self.ovn = ovn  # judges the re-bound OVN ports (ovn_ports) as the audit did
        self.ovn_ports = ovn_ports
        self.rebound: dict[str, Binding] = {}  # OVN ports as re-bound, for the LSP check
        self.conn = api.connection
        self.agents = agents
        self.ctx = ctx
        self.codes = codes
        self.method = method
        self.via_host = via_host
        self.if_match = "revision-if-match" in api.extensions
        self._lock = threading.Lock()

    # -- HTTP -------------------------------------------------------------
    def _check(self, response: Any, what: str) -> Any:
        code = response.status_code
        if code == 412:
            raise Conflict(what)
        if code == 403:
            raise Refused(f"{what}: HTTP 403 {_neutron_message(response)}")
        if code >= 400:
            raise RuntimeError(f"{what}: HTTP {code} {_neutron_message(response)}")
        return response

    def get_port(self, port_id: str) -> dict:
        response = self.conn.network.get(f"/ports/{port_id}", raise_exc=False)
        return self._check(response, "GET port").json()["port"]

    def put_port(self, port_id: str, body: dict, revision: int | None) -> dict:
        headers = (
            {"If-Match": f"revision_number={revision}"}
            if (self.if_match and revision is not None)
            else {}
        )
        response = self.conn.network.put(
            f"/ports/{port_id}", json={"port": body}, headers=headers, raise_exc=False
        )
        return self._check(response, f"PUT {', '.join(body)}").json()["port"]

    # -- methods ----------------------------------------------------------
    def _via_profile(self, port: dict) -> dict:
        original = port.get("binding:profile") or {}
        marked = {**original, REBIND_KEY: uuid.uuid4().hex[:12]}
        after = self.put_port(port["id"], {"binding:profile": marked}, port["revision_number"])
        return self._restore(
            port["id"],
            after,
            "binding:profile",
            lambda cur: {k: v for k, v in (cur or {}).items() if k != REBIND_KEY},
            original,
            self._openstack("port", "unset", "--binding-profile", REBIND_KEY, port["id"]),
        )

    def _via_host(self, port: dict) -> dict:
        host = port["binding:host_id"]
        after = self.put_port(port["id"], {"binding:host_id": ""}, port["revision_number"])
        return self._restore(
            port["id"],
            after,
            "binding:host_id",
            lambda cur: cur or host,
            host,
            self._openstack("port", "set", "--host", host, port["id"]),
        )

    def _restore(
        self,
        port_id: str,
        after: dict,
        attr: str,
        fix: Any,
        original: Any,
        by_hand: tuple[str, ...],
    ) -> dict:
        """Put back what the method changed; on a conflict, only undo our own change.

        A failure that is not a conflict is retried for a few seconds: a neutron-server
        worker answers 404 for about a second after it starts, until its policy rules
        are loaded (docs/ovn.md), and a 5xx may pass as quickly. If the port still
        cannot be put back, the error says how it was left and the command that ends it.
        """
        try:
            return self.put_port(port_id, {attr: original}, after["revision_number"])
        except Conflict:
            pass
        except Refused:
            raise
        except Exception:  # retried below, from a fresh read
            time.sleep(RESTORE_WAIT_S)
        conflicts = failures = 0
        while True:  # re-read, undo ours only
            try:
                current = self.get_port(port_id)
                wanted = fix(current.get(attr))
                if wanted == current.get(attr):
                    return current
                return self.put_port(port_id, {attr: wanted}, current["revision_number"])
            except Conflict:  # someone changed the port meanwhile
                conflicts += 1
                if conflicts >= 5:
                    raise LeftHalfWay(self._left(port_id, attr, "5 conflicts", by_hand)) from None
                time.sleep(0.2)
            except Refused:
                raise
            except Exception as exc:
                failures += 1
                if failures >= RESTORE_TRIES:
                    raise LeftHalfWay(self._left(port_id, attr, str(exc)[:200], by_hand)) from None
                time.sleep(RESTORE_WAIT_S * failures)

    def _openstack(self, *words: str) -> tuple[str, ...]:
        """An ``openstack`` command line against the cloud this repair uses."""
        cloud = ("--os-cloud", self.api.cloud) if self.api.cloud else ()
        return ("openstack", *cloud, *words)

    @staticmethod
    def _left(port_id: str, attr: str, why: str, by_hand: tuple[str, ...]) -> str:
        shown = command(*by_hand)
        return (
            f"could not put {attr} of port {port_id} back ({why}): the port is left "
            "half-way through its re-bind; "
            + (f"put it back with: {shown}" if shown else "check the port by hand")
        )

    def _via_bindings(self, port: dict) -> dict:
        if not self.via_host:
            raise RuntimeError("--rebind-method bindings needs --via-host HOST")
        pid, home, via = port["id"], port["binding:host_id"], self.via_host
        keep = {
            "vnic_type": port.get("binding:vnic_type") or "normal",
            "profile": port.get("binding:profile") or {},
        }
        base = f"/ports/{pid}/bindings"
        net = self.conn.network
        self._check(
            net.post(base, json={"binding": {"host": via, **keep}}, raise_exc=False),
            f"create binding on {via}",
        )
        try:
            self._check(net.put(f"{base}/{via}/activate", raise_exc=False), f"activate {via}")
            self._check(net.delete(f"{base}/{home}", raise_exc=False), f"delete {home}")
            self._check(
                net.post(base, json={"binding": {"host": home, **keep}}, raise_exc=False),
                f"create binding on {home}",
            )
            self._check(net.put(f"{base}/{home}/activate", raise_exc=False), f"activate {home}")
        finally:  # whatever failed, the visit to the via host must not outlive us
            current = self.get_port(pid)
            if current.get("binding:host_id") == home:
                net.delete(f"{base}/{via}", raise_exc=False)
        return self.get_port(pid)

    # -- one port ---------------------------------------------------------
    def _live_agent(self, change: Change) -> bool:
        """What ``bind_port`` needs on the host: a live agent of the binding's kind (the OVN
        driver asks neutron's AgentCache for the host's OVN controller agent)."""
        if change.port_id in self.ovn_ports:
            wanted: tuple[str, ...] = OVN_AGENTS
        else:
            wanted = (AGENT_LINUXBRIDGE if change.vif_type == VIF_BRIDGE else AGENT_OVS,)
        return any(
            a.agent_type in wanted and a.alive and a.admin_state_up
            for a in self.agents.get(change.host, [])
        )

    def _choose(self) -> str:
        # auto is the least disruptive method; a more disruptive one is only ever used when
        # the operator names it (safety first: no silent escalation to unbinding ports).
        return "profile" if self.method == "auto" else self.method

    def rebind(self, change: Change, seen: dict) -> PortResult:
        """Re-bind one port if it is still as the audit saw it; verify; never raise."""
        method = self._choose()
        res = PortResult(
            change.port_id,
            change.host,
            method,
            status_before=seen.get("status", ""),
            revision_before=seen.get("revision_number"),
            details_before=stored_details(seen.get("binding:vif_details")),
        )
        if not self._live_agent(change):
            res.result = SKIPPED
            res.message = (
                f"no live, admin-up agent on {change.host}: a re-bind would end in binding_failed"
            )
            return res
        try:
            after = self._run(method, seen)
        except Refused as exc:
            res.result = FAILED
            res.message = (
                f"{exc}: updating binding:profile needs the service role; give the "
                "account that role, or re-run with --rebind-method host (the port "
                "is unbound and unwired between its two updates)"
            )
            return res
        except Conflict:
            res.result = SKIPPED
            res.message += "changed underneath (revision moved since the audit): left as found"
            return res
        except LeftHalfWay as exc:  # whole: it ends with the command that puts it back
            res.result = FAILED
            res.message += str(exc)
            return res
        except Exception as exc:  # one port's failure must not stop the others
            res.result = FAILED
            res.message += str(exc)[:300]
            return res
        self._verify(res, seen, after)
        return res

    def _run(self, method: str, seen: dict) -> dict:
        return {
            "profile": self._via_profile,
            "host": self._via_host,
            "bindings": self._via_bindings,
        }[method](seen)

    def _judge(self, binding: Binding) -> Judgement:
        """The re-bound row judged as the audit judged it (OVN's ports by the OVN rules)."""
        if self.ovn is not None and binding.port_id in self.ovn_ports:
            with self._lock:  # the join keeps a tally: one port at a time
                return self.ovn.judge(binding)
        return judge_binding(binding, self.agents.get(binding.host, []), self.ctx)

    def _verify(self, res: PortResult, seen: dict, after: dict) -> None:
        """The port is back as it was but for fresh details, and the rules are satisfied."""
        res.status_after = after.get("status", "")
        res.revision_after = after.get("revision_number")
        res.details_after = stored_details(after.get("binding:vif_details"))
        moved = [
            a
            for a in (
                "binding:host_id",
                "binding:profile",
                "binding:vnic_type",
                "device_id",
                "device_owner",
            )
            if (after.get(a) or None) != (seen.get(a) or None)
        ]
        binding = self.api._binding(after)
        found = self._judge(binding).findings if binding is not None else []
        # The LSP (VD408) is in the NB read before the re-binds: checked on a fresh read
        # once every port is done (check_lsps).
        unseen = LSP_CODES if res.port_id in self.ovn_ports else frozenset()
        if unseen and binding is not None:
            with self._lock:
                self.rebound[res.port_id] = binding
        res.remaining = sorted({f.code for f in found if f.code in self.codes - unseen})
        vif_type = after.get("binding:vif_type")
        if moved or vif_type in (VIF_BINDING_FAILED, VIF_UNBOUND) or res.remaining:
            res.result = FAILED
            res.message += "; ".join(
                filter(
                    None,
                    [
                        f"not restored: {', '.join(moved)}" if moved else "",
                        f"vif_type is now {vif_type}"
                        if vif_type in (VIF_BINDING_FAILED, VIF_UNBOUND)
                        else "",
                        f"still {', '.join(res.remaining)} after the re-bind: the agent's "
                        "report does not give what the host needs (use the database repair)"
                        if res.remaining
                        else "",
                    ],
                )
            )
        else:
            res.result = REBOUND
            res.message += f"re-bound by Neutron; {METHOD_EFFECTS[res.method]}"
            if res.port_id in self.ovn_ports:
                res.message += "; the OVN driver rewrote the details and the LSP"

    def check_lsps(self, results: dict[str, PortResult], fresh: OvnJoin) -> None:
        """VD408 on the NB as it is after the re-binds (one read for all the ports)."""
        for port_id, binding in self.rebound.items():
            res = results.get(port_id)
            if res is None or res.result != REBOUND:
                continue
            left = sorted(
                {f.code for f in fresh.judge(binding).findings if f.code in self.codes & LSP_CODES}
            )
            if left:
                res.result = FAILED
                res.remaining = sorted({*res.remaining, *left})
                res.message += (
                    f"; still {', '.join(left)} after the re-bind: the LSP's requested-chassis "
                    "is not the binding host"
                )


def _neutron_message(response: Any) -> str:
    try:
        body = response.json()
        inner = body.get("NeutronError", body)
        return str(inner.get("message", ""))[:200]
    except Exception:
        return ""


def rebind_all(
    rebinder: Rebinder,
    due: list[tuple[Change, dict]],
    *,
    concurrency: int,
    max_rate: float | None,
    should_stop: Any = lambda: False,
    progress: Any = lambda n: None,
) -> dict[str, PortResult]:
    """Re-bind every due port, at most ``concurrency`` at a time, paced to ``max_rate``/s."""
    results: dict[str, PortResult] = {}
    futures: list[tuple[Change, Future]] = []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        start = time.monotonic()
        for n, (change, seen) in enumerate(due):
            if should_stop():
                break
            if max_rate:
                wait = start + n / max_rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            future = pool.submit(rebinder.rebind, change, seen)
            future.add_done_callback(lambda _f: progress(1))
            futures.append((change, future))
        for change, future in futures:
            results[change.port_id] = future.result()
    for change, seen in due:
        if change.port_id not in results:
            results[change.port_id] = PortResult(
                change.port_id,
                change.host,
                rebinder._choose(),
                result="not attempted",
                revision_before=seen.get("revision_number"),
            )
    return results


def _backup_rows(due: list[tuple[Change, dict]], api: NeutronApi) -> list[dict]:
    """Every attribute of every due port before the change (and its other bindings)."""
    rows = []
    for change, seen in due:
        original = dict(seen)
        if api.layout and api.layout.has_status:
            rows_now = api._port_bindings_or_none(change.port_id)
            original["bindings"] = (
                rows_now
                if rows_now is not None
                else ("unreadable: Neutron fails (HTTP 500) on this port's stored binding text")
            )
        rows.append({"original": original, "written": change.new, "codes": list(change.codes)})
    return rows


def _unmoving_api(
    changes: list[Change], options: RepairOptions, api: NeutronApi
) -> tuple[list[Change], dict]:
    """Nova (its databases when given, else its API) keeps moving instances' ports out."""
    from vifdoctor.repair import stale

    changes, migrating = _live_migrating(changes)
    cells = stale.nova_for(options, api)
    if cells is None:
        return changes, {"skipped_moving": migrating} if migrating else {}
    try:
        kept, skipped = stale.skip_moving(changes, cells)
    finally:
        cells.close()
    return kept, {"skipped_moving": migrating + skipped}


def _live_migrating(changes: list[Change]) -> tuple[list[Change], list[dict]]:
    """Neutron's own word, without Nova: a binding profile with ``migrating_to`` is a live
    migration under way (Nova sets it, the OVN driver requests both chassis)."""
    kept, skipped = [], []
    for c in changes:
        profile = parse_json_column(c.binding.profile).as_dict() if c.binding else {}
        dst = migrating_to(profile)
        if dst:
            skipped.append(
                {
                    "port_id": c.port_id,
                    "host": c.host,
                    "device_id": c.device_id,
                    "reason": f"live migration to {dst} under way (binding:profile migrating_to)",
                }
            )
        else:
            kept.append(c)
    return kept, skipped


def rebind_change(
    binding: Binding, judgement: Judgement, codes: frozenset[str], ctx: RuleContext
) -> Change | None:
    """The port to re-bind, if a selected finding asks for it: the database repair's change,
    or, for an OVN code without a correction (VD404 for a vif_type that does not fit the
    chassis, VD408), the details the OVN driver is expected to write (the re-bind writes
    them and the LSP, not SQL)."""
    change = plan_change(binding, judgement, codes, ctx)
    if change is not None:
        return change
    if binding.status not in (None, "ACTIVE"):
        return None
    due = [f for f in judgement.findings if f.code in codes & OVN_REBIND_CODES]
    if not due:
        return None
    expected = next((f.expected_details for f in due if isinstance(f.expected_details, dict)), None)
    return Change(
        port_id=binding.port_id,
        host=binding.host,
        status=binding.status,
        stored=binding.vif_details,
        # VD408 alone: the details stay; the driver rewrites the LSP
        new=json.dumps(expected) if expected is not None else binding.vif_details,
        codes=tuple(sorted({f.code for f in due})),
        device_owner=binding.device_owner,
        device_id=binding.device_id,
        vif_type=binding.vif_type,
        plug_before="",
        plug_after="",
        binding=binding,
    )


def _open_ovn(
    options: RepairOptions,
    source: NeutronApi,
    agents: dict,
    settings: Resolved,
    codes: frozenset[str],
    notes: bool = True,
) -> OvnJoin | None:
    """OVN's view when NB/SB are named (flags or [ovn]); VD404/VD405/VD408 cannot go
    without it: Neutron's API shows no chassis's datapath type, OVN bridge or LSP."""
    join, found_notes = open_ovn(
        options.ovn_nb_connection,
        options.ovn_sb_connection,
        options.neutron_config_file,
        source,
        agents,
        settings.context,
        settings.agent_down_time,
    )
    if notes:
        settings.assumptions.extend(found_notes)
    wanted = sorted(codes & OVN_REBIND_CODES)
    if wanted and (join is None or join.chassis_only):
        raise VifdoctorError(
            f"{' and '.join(wanted)} through the API need OVN's databases: pass "
            "--ovn-nb-connection and --ovn-sb-connection (or [ovn] in a "
            "--neutron-config-file); Neutron's API shows no chassis's datapath type, "
            "OVN bridge or logical switch port"
        )
    return join


def repair_via_api(options: RepairOptions, settings: Resolved, hooks: Hooks) -> ChangeReport:
    """``repair --os-cloud NAME [--apply]``: plan, back up, re-bind, verify."""
    codes = repair_codes(options.code, rebind=True)
    method = options.rebind_method
    if method == "bindings" and not options.via_host:
        raise VifdoctorError(
            "--rebind-method bindings needs --via-host HOST (a host with a "
            "live agent the binding visits)"
        )
    with neutron_session(options, settings) as s:
        api = s.source
        assert isinstance(api, NeutronApi)
        ovn = _open_ovn(options, api, s.agents, s.settings, codes)
        ctx = s.settings.context
        changes = [
            c
            for b, j in judge_all(api.bindings(s.selectors), s.agents, ctx, ovn)
            if (c := rebind_change(b, j, codes, ctx)) is not None
        ]
        ovn_ports = frozenset(
            c.port_id
            for c in changes
            if ovn is not None
            and c.binding is not None
            and ovn.claims(c.binding, s.agents.get(c.host, []))
        )
        changes, moving = _unmoving_api(changes, options, api)
        by_id = {p["id"]: p for p in api.ports(s.selectors)}
        due = [(c, by_id[c.port_id]) for c in changes if c.port_id in by_id]
        shown = "auto (profile, the least disruptive)" if method == "auto" else method
        extra = {
            "codes": sorted(codes),
            "applied": bool(options.apply),
            "method": shown,
            "method_effects": METHOD_EFFECTS,
            **moving,
        }
        report = ChangeReport(
            "api-repair",
            changes,
            api.describe(),
            s.settings.assumptions,
            extra,
            restorable=len(due),
        )
        if not options.apply or not due:
            return report
        rebinder = Rebinder(
            api, s.agents, ctx, codes, method, options.via_host, ovn=ovn, ovn_ports=ovn_ports
        )
        folder = options.backup_dir or default_dir()
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        header = {
            "kind": "api-repair",
            "api": api.describe(),
            "method": shown,
            "table": "ml2_port_bindings (through the API)",
        }
        path = write_backup(folder, header, _backup_rows(due, api), name=f"api-repair-{stamp}.json")
        bar = hooks.progress(len(due))
        try:
            with hooks.writing() as should_stop:
                results = rebind_all(
                    rebinder,
                    due,
                    concurrency=options.concurrency,
                    max_rate=options.max_rate,
                    should_stop=should_stop,
                    progress=bar.update if bar is not None else (lambda n: None),
                )
        finally:
            if bar is not None:
                bar.close()
        if rebinder.rebound and codes & LSP_CODES:
            fresh = _open_ovn(options, api, s.agents, s.settings, codes, notes=False)
            if fresh is not None:
                rebinder.check_lsps(results, fresh)
        counts = {
            state: sum(r.result == state for r in results.values())
            for state in (REBOUND, SKIPPED, FAILED, "not attempted")
        }
        report.changes = [c for c, _ in due]
        report.applied = True
        report.backup = path
        report.outcome = counts
        report.extra = {
            **extra,
            "backup": path,
            "outcome": counts,
            "ports": [r.as_dict() for r in results.values()],
        }
        report.results = {
            (r.port_id, r.host): (
                r.result,
                json.dumps(r.details_after) if r.details_after is not None else None,
            )
            for r in results.values()
        }
        report.done = [c for c, _ in due if results[c.port_id].result == REBOUND]
        report.messages = [
            f"{r.port_id}: {r.result}: {r.message}" for r in results.values() if r.result != REBOUND
        ][:20]
        report.exit_code = 130 if counts["not attempted"] else 2 if counts[FAILED] else 0
        return report
