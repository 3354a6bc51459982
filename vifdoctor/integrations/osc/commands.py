"""``openstack vifdoctor audit|plan|repair|rollback|remediation|explain`` as cliff Listers.

Output formats (``-f table|json|yaml|csv|value``), ``-c``, ``--sort-column`` and
``--max-width`` are cliff's; authentication, ``--os-cloud`` and clouds.yaml are
OSC's. The flags of each command are generated from vifdoctor's options
dataclasses (the long flag is the field name), so they stay the CLI's flags.

The source is chosen as the CLI chooses it, with one difference: when no
database is named (``--neutron-db``, ``--neutron-config-file`` or
``VIFDOCTOR_NEUTRON_DB``), the command runs in API mode through OSC's own
authenticated session instead of opening another one. Exit codes are the
CLI's (0, 1 warnings, 2 failures); an error that stops a command is OSC's
one-line error (exit 1).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import sys
from collections.abc import Iterator
from typing import Any

from cliff import columns
from osc_lib import exceptions
from osc_lib.command import command
from sqlalchemy.exc import SQLAlchemyError

from vifdoctor import api
from vifdoctor.errors import VifdoctorError
from vifdoctor.integrations.osc.plugin import API_NAME
from vifdoctor.options import AuditOptions, RepairOptions, RollbackOptions, SourceOptions
from vifdoctor.report import Listing, cell
from vifdoctor.settings import ENV_NEUTRON_DB
from vifdoctor.sources.database import db_error, scrub

#: One line of help per flag; the long flag is the options field's name.
HELP = {
    "neutron_db": "SQLAlchemy URL of Neutron's database: DB mode (default: API mode "
    "through this client's session)",
    "neutron_config_file": "neutron.conf / ml2_conf.ini to read [database] connection, "
    "[securitygroup] and agent_down_time from (repeatable): DB mode",
    "skip_inactive_bindings": "API mode: do not read each VM port's INACTIVE bindings",
    "no_nova_api": "API mode: do not read Nova's compute API",
    "firewall_driver": "the OVS agents' firewall_driver, for agents that do not report "
    "ovs_hybrid_plug (iptables_hybrid, openvswitch, noop, iptables)",
    "nova_generation": "modern (Ussuri+, default) or legacy (Icehouse..Train)",
    "nova_firewall_driver": "legacy Nova's [DEFAULT] firewall_driver",
    "agent_down_time": "seconds after which an agent's heartbeat is dead (default 75)",
    "host": "only this bound host (repeatable)",
    "port": "only this port UUID (repeatable)",
    "network": "only this network UUID (repeatable)",
    "project": "only this project ID (repeatable)",
    "code": "only findings with this code, e.g. VD101 (repeatable)",
    "nova_db": "a Nova cell database URL (repeatable)",
    "nova_api_db": "the nova_api database URL (its cell_mappings give the cells)",
    "nova_config_file": "nova.conf to read the Nova databases from (repeatable)",
    "host_reports": "a folder of `vifdoctor host-scan` reports",
    "apply": "write (default: a dry run that only shows what would change)",
    "backup_dir": "where the backup goes (default ./vifdoctor-backup-<UTC time>)",
    "batch_size": "rows in every transaction (default: adaptive, 500 to 2,000 rows, "
    "aiming at 100 ms each)",
    "max_rate": "rows per second at most",
    "retries": "retries of a batch after a lock wait timeout or deadlock (default 5)",
    "lock_wait_timeout": "MySQL innodb_lock_wait_timeout (seconds) for the writes",
    "rebind_method": "API mode: auto, profile, host or bindings (docs/api-mode.md)",
    "via_host": "API mode, --rebind-method bindings: the host the binding visits",
    "concurrency": "API mode: ports re-bound at the same time (default 4)",
    "any_database": "restore into a database other than the one backed up",
}
#: OSC's own --os-cloud chooses the cloud; the options' field is filled from it.
NOT_FLAGS = ("os_cloud",)


class Url(str):
    """A database URL whose repr hides its password: osc_lib logs ``run(<parsed args>)``
    at --debug, masked only for ``password=`` patterns, not for URL credentials."""

    def __repr__(self) -> str:
        return repr(scrub(str(self)))


def add_option_flags(parser: argparse.ArgumentParser, options: type) -> None:
    """One flag per field of the options dataclass, typed from its annotation."""
    for f in dataclasses.fields(options):
        if f.name in NOT_FLAGS:
            continue
        flag, kind = "--" + f.name.replace("_", "-"), str(f.type)
        text = HELP.get(f.name, "")
        if kind == "bool":
            parser.add_argument(flag, action="store_true", help=text)
        elif kind.startswith("tuple"):
            parser.add_argument(
                flag,
                action="append",
                default=[],
                metavar="<value>",
                type=Url if f.name.endswith("_db") else str,
                help=text,
            )
        else:
            convert = int if "int" in kind else float if "float" in kind else str
            if f.name.endswith("_db"):
                convert = Url
            parser.add_argument(flag, type=convert, metavar="<value>", help=text)


def options_of(options: type, parsed: argparse.Namespace) -> dict[str, Any]:
    """The fields given on the command line (the rest keep the dataclass defaults)."""
    given = {}
    for f in dataclasses.fields(options):
        value = getattr(parsed, f.name, None)
        if value is not None and value != [] and value is not False:
            given[f.name] = value
    return given


class Json(columns.FormattableColumn):
    """A dict or list: JSON text in a table, the structure itself in -f json/yaml."""

    def human_readable(self) -> str:
        return cell(self._value)

    def machine_readable(self) -> Any:
        return self._value


def _value(value: Any) -> Any:
    return Json(value) if isinstance(value, (dict, list)) else value


class VifdoctorLister(command.Lister):
    """What every vifdoctor command shares: flags, the source, errors, the exit code."""

    auth_required = False  # DB mode needs no Keystone; API mode authenticates when chosen
    options_class: type[SourceOptions] = AuditOptions

    def __init__(self, app: Any, app_args: Any, cmd_name: str | None = None) -> None:
        super().__init__(app, app_args, cmd_name)
        self.exit_code = 0

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        self.add_arguments(parser)
        add_option_flags(parser, self.options_class)
        return parser

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Positional arguments and flags of one command, before the options."""

    def listing(self, parsed_args: argparse.Namespace, options: dict[str, Any]) -> Listing:
        raise NotImplementedError

    @contextlib.contextmanager
    def source(self, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """DB mode when a database is named; otherwise API mode on OSC's session."""
        if (
            options.get("neutron_db")
            or options.get("neutron_config_file")
            or os.environ.get(ENV_NEUTRON_DB)
        ):
            yield options
            return
        # Authenticate now, exactly as OSC does for commands that require it.
        self.auth_required = True
        self.app.prepare_to_run_command(self)
        connection = getattr(self.app.client_manager, API_NAME)  # plugin.make_client
        with api.openstack_connection(connection):
            yield {**options, "os_cloud": self.app.options.cloud or "openstack client"}

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[list[str], Iterator]:
        options = options_of(self.options_class, parsed_args)
        try:
            with self.source(options) as chosen:
                listing = self.listing(parsed_args, chosen)
        except VifdoctorError as exc:
            raise exceptions.CommandError(str(exc)) from None
        except SQLAlchemyError as exc:
            raise exceptions.CommandError(f"database: {db_error(exc)}") from None
        if getattr(parsed_args, "long", False) and listing.available:
            listing = Listing(
                listing.available,
                listing.rows,
                listing.document,
                listing.rows_key,
                listing.footer,
                listing.available,
            )
        if parsed_args.formatter == "table":
            for line in listing.footer:  # schema, counts, assumptions: for a person
                print(line, file=sys.stderr)
        keys = [c.key for c in listing.columns]
        rows = (tuple(_value(row.get(k)) for k in keys) for row in listing.rows)
        return [c.heading for c in listing.columns], rows

    def run(self, parsed_args: argparse.Namespace) -> int:
        """cliff's run, then the CLI's exit code: 1 warnings, 2 failures."""
        return super().run(parsed_args) or self.exit_code


class Audit(VifdoctorLister):
    """Report every port binding Nova will plug wrong (read-only)."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--long",
            action="store_true",
            help="every column (device owner, network, details, impact, ...)",
        )

    def listing(self, parsed_args: argparse.Namespace, options: dict[str, Any]) -> Listing:
        from vifdoctor.report.findings import audit_listing

        report = api.audit(**options)
        self.exit_code = report.exit_code
        return audit_listing(report)


class Remediation(VifdoctorLister):
    """Per host, what each affected instance needs once its bindings are fixed."""

    def listing(self, parsed_args: argparse.Namespace, options: dict[str, Any]) -> Listing:
        from vifdoctor.report.remediation import remediation_listing

        report = api.remediation(**options)
        argv = ["openstack", "vifdoctor", "repair"]
        for name in ("host", "port", "network", "project"):  # as the CLI: no source, no URL
            for value in options.get(name, ()):
                argv += [f"--{name}", value]
        command_line = shlex.join([*argv, "--apply"])
        return remediation_listing(report, command_line)


class _Changes(VifdoctorLister):
    options_class: type[SourceOptions] = RepairOptions

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--long",
            action="store_true",
            help="every column (device, plug before/after, result, ...)",
        )

    def show(self, report: Any) -> Listing:
        from vifdoctor.report.changes import change_listing

        self.exit_code = report.exit_code
        return change_listing(report)


class Plan(_Changes):
    """The exact binding changes a repair would make (read-only)."""

    def listing(self, parsed_args: argparse.Namespace, options: dict[str, Any]) -> Listing:
        return self.show(api.plan(**options))


class Repair(_Changes):
    """Rewrite the flagged bindings: a dry run unless --apply; backed up and guarded."""

    def listing(self, parsed_args: argparse.Namespace, options: dict[str, Any]) -> Listing:
        return self.show(api.repair(**options))


class Rollback(_Changes):
    """Restore the rows of a repair backup (a dry run unless --apply)."""

    options_class: type[SourceOptions] = RollbackOptions

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("backup", metavar="<backup>", help="the backup file a repair wrote")

    def listing(self, parsed_args: argparse.Namespace, options: dict[str, Any]) -> Listing:
        return self.show(api.rollback(parsed_args.backup, **options))


class Explain(command.Lister):
    """What finding codes mean, their impact and remedy (all codes when none is named)."""

    auth_required = False

    def get_parser(self, prog_name: str) -> argparse.ArgumentParser:
        parser = super().get_parser(prog_name)
        parser.add_argument("codes", nargs="*", metavar="<code>", help="e.g. VD101")
        return parser

    def take_action(self, parsed_args: argparse.Namespace) -> tuple[list[str], list]:
        try:
            infos = api.explain(*parsed_args.codes)
        except VifdoctorError as exc:
            raise exceptions.CommandError(str(exc)) from None
        heads = ["Code", "Severity", "Title", "What", "Impact", "Remedy", "Repair"]
        rows = [
            (
                i.code,
                i.severity.value,
                i.title,
                i.why,
                i.impact,
                i.remedy,
                "by default" if i.repair_by_default else "with --code" if i.repairable else "never",
            )
            for i in infos
        ]
        return heads, rows
