"""vifdoctor's checks for ``neutron-status upgrade check``.

Registered under neutron's own plugin entry point ``neutron.status.upgrade.checks``
(pyproject.toml), as neutron registers its ``CoreChecks``: ``neutron-status``
instantiates the class and runs each ``(name, method)`` of :meth:`get_checks`,
calling the method with its ``Checker`` as the one argument
(neutron/cmd/status.py, oslo_upgradecheck ``UpgradeCommands.check``).

This module runs only inside neutron's environment: it imports neutron_lib,
oslo.upgradecheck and neutron's option registrations. The settings come from
neutron's own parsed ``cfg.CONF``: ``[database] connection``,
``[securitygroup] firewall_driver`` / ``enable_security_group`` and
``[DEFAULT] agent_down_time``. One read-only audit serves the three checks.

oslo.upgradecheck turns any exception a check raises into a traceback and exit
255 for *all* checks, so nothing may escape here: whatever goes wrong becomes a
FAILURE of vifdoctor's checks with one line, and neutron's other checks still run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from neutron_lib.utils import upgrade_checks
from oslo_config import cfg
from oslo_upgradecheck import upgradecheck
from sqlalchemy.exc import SQLAlchemyError

from vifdoctor import api
from vifdoctor.errors import VifdoctorError
from vifdoctor.results import AuditReport
from vifdoctor.sources.database import db_error, scrub

#: Ports named in a check's details; the full report has them all.
FIRST_PORTS = 3


@dataclass(frozen=True)
class Check:
    name: str
    codes: tuple[str, ...]
    what: str  # "N <what>" in the details
    clean: str  # the SUCCESS details


# The OVN codes come only where the config files neutron-status reads hold [ovn]
# connections: the audit reads them from the same files (vifdoctor.sources.ovn).
CHECKS = (
    Check(
        "Port bindings Nova will plug wrong",
        (
            "VD101",
            "VD104",
            "VD105",
            "VD107",
            "VD108",
            "VD112",
            "VD401",
            "VD402",
            "VD403",
            "VD404",
            "VD406",
            "VD408",
            "VD409",
        ),
        "port binding(s) Nova will plug wrong or cannot plug",
        "No port binding that Nova will plug wrong",
    ),
    Check(
        "Stale port bindings",
        ("VD109", "VD206"),
        "stale INACTIVE port binding(s) beside the ACTIVE one",
        "No stale port binding",
    ),
    Check(
        "Binding details leftovers",
        ("VD102", "VD103", "VD405"),
        "port binding(s) whose vif_details disagree with the host's firewall",
        "No leftover in port binding details",
    ),
)

_LEVEL = {"failure": upgradecheck.Code.FAILURE, "warning": upgradecheck.Code.WARNING}


def _user_set(conf: cfg.ConfigOpts, name: str, group: str | None = None) -> Any:
    """The option's value when the operator set it (file or environment), else None."""
    try:
        location = conf.get_location(name, group)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        return None
    if location is None or location.location in (
        cfg.Locations.opt_default,
        cfg.Locations.set_default,
    ):
        return None
    return conf[group][name] if group else conf[name]


def config_files(conf: cfg.ConfigOpts) -> list[str]:
    """The files neutron-status parsed, in oslo.config's order: --config-file, then dirs."""
    files = [os.path.abspath(f) for f in (conf.config_file or [])]
    for folder in conf.config_dir or []:
        files += sorted(glob.glob(os.path.join(os.path.abspath(folder), "*.conf")))
    return files


def report_command(files: list[str], codes: tuple[str, ...]) -> str:
    """The vifdoctor command that shows the full report: config files, never the URL."""
    argv = ["vifdoctor", "audit"]
    for f in files:
        argv += ["--neutron-config-file", f]
    for code in codes:
        argv += ["--code", code]
    return shlex.join(argv)


def summarize(check: Check, report: AuditReport, command: str) -> tuple[int, str]:
    """(oslo code, details) of one check from the audit's findings."""
    wanted = set(check.codes)
    by_code: Counter = Counter()
    by_host: Counter = Counter()
    first: list[str] = []
    level = upgradecheck.Code.SUCCESS
    ports: set[str] = set()
    for f in report.findings:  # sorted failures first, then by code, host, port
        if f["code"] not in wanted:
            continue
        by_code[f["code"]] += 1
        by_host[f.get("host") or "(no host)"] += 1
        level = max(level, _LEVEL.get(f["severity"], upgradecheck.Code.SUCCESS))
        key = f.get("port_id") or f.get("host") or ""
        if key not in ports:
            ports.add(key)
            if len(first) < FIRST_PORTS:
                first.append(f"{key} ({f['code']} on {f.get('host') or '?'})")
    if not by_code:
        judged = report.categories.get("judged", 0)
        return level, (
            f"{check.clean} among {report.rows} binding(s) "
            f"({judged} judged, layout {report.schema.get('layout')})."
        )
    codes = ", ".join(f"{c} x{n}" for c, n in sorted(by_code.items()))
    hosts = ", ".join(f"{h} {n}" for h, n in by_host.most_common(5))
    more = f" and {len(by_host) - 5} more" if len(by_host) > 5 else ""
    details = (
        f"{len(ports)} {check.what}: {codes}. Hosts: {hosts}{more}. "
        f"First: {'; '.join(first)}. Full report: {command}"
    )
    return level, details


def one_line(exc: BaseException) -> str:
    """An unexpected error as one short line, with no password in it."""
    lines = scrub(str(exc)).splitlines()
    return f"{type(exc).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


class VifdoctorChecks(upgrade_checks.BaseChecks):
    """The checks neutron-status loads from vifdoctor's entry point."""

    def __init__(self) -> None:
        super().__init__()
        self._report: AuditReport | None = None
        self._error: str | None = None
        self._done = False
        # neutron-status does not register [securitygroup] (its agents do): neutron's
        # own registration, so the option is the very one neutron defines.
        with contextlib.suppress(Exception):
            from neutron.conf.agent import securitygroups_rpc

            securitygroups_rpc.register_securitygroups_opts(cfg.CONF)

    def get_checks(self) -> list[tuple[str, Callable[[Any], upgradecheck.Result]]]:
        return [(check.name, self._runner(check)) for check in CHECKS]

    def _runner(self, check: Check) -> Callable[[Any], upgradecheck.Result]:
        def run(checker: Any) -> upgradecheck.Result:  # noqa: ARG001 - oslo passes it
            try:
                return self._result(check)
            except Exception as exc:  # never break neutron's other checks
                return upgradecheck.Result(
                    upgradecheck.Code.FAILURE, f"vifdoctor failed: {one_line(exc)}"
                )

        run.__name__ = "vifdoctor_" + check.name.lower().replace(" ", "_")
        return run

    def _result(self, check: Check) -> upgradecheck.Result:
        conf = cfg.CONF
        if not conf.database.connection:
            return upgradecheck.Result(
                upgradecheck.Code.WARNING,
                "Database connection string is not set: vifdoctor cannot read the port bindings.",
            )
        self._audit(conf)
        if self._error is not None:
            return upgradecheck.Result(
                upgradecheck.Code.FAILURE, f"vifdoctor could not run: {self._error}"
            )
        assert self._report is not None
        files = config_files(conf)
        # The OVN codes only where the audit read OVN's databases (the [ovn] options).
        codes = tuple(
            c for c in check.codes if self._report.ovn is not None or not c.startswith("VD4")
        )
        code, details = summarize(check, self._report, report_command(files, codes))
        return upgradecheck.Result(code, details)

    def _audit(self, conf: cfg.ConfigOpts) -> None:
        """One audit for the three checks; its failure is remembered as one line."""
        if self._done:
            return
        self._done = True
        options: dict[str, Any] = {
            "neutron_db": conf.database.connection,
            # [securitygroup] enable_security_group is read from the same files
            "neutron_config_file": config_files(conf),
        }
        firewall = _user_set(conf, "firewall_driver", "securitygroup")
        if firewall:
            options["firewall_driver"] = firewall
        down = _user_set(conf, "agent_down_time")
        if down:
            options["agent_down_time"] = float(down)
        try:
            self._report = api.audit(**options)
            if self._report.by_code.get("VD104"):
                # Seen before neutron's own checks run (when this plugin loads first): the
                # one hint an operator gets if neutron's binding check then dies on the row.
                print(
                    f"vifdoctor: {self._report.by_code['VD104']} port binding row(s) hold "
                    "vif_details or profile that is not a JSON object (VD104); neutron's "
                    "own 'Port Binding profile sanity check' stops with a traceback on "
                    "text that does not parse",
                    file=sys.stderr,
                )
        except VifdoctorError as exc:
            self._error = str(exc)
        except SQLAlchemyError as exc:
            self._error = f"database: {db_error(exc)}"
        except Exception as exc:  # a bug of ours: still one line
            self._error = one_line(exc)
