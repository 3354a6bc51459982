"""``vifdoctor`` command line: argument parsing and dispatch, nothing more.

Exit codes follow oslo.upgradecheck: 0 nothing above info, 1 warnings only,
2 any failure, 3 could not run (one line on stderr, never a traceback).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from sqlalchemy.exc import SQLAlchemyError

from vifdoctor import __version__
from vifdoctor.collector import free_at_exit
from vifdoctor.errors import EXIT_CANNOT_RUN, VifdoctorError
from vifdoctor.integrations.logs import setup_logging
from vifdoctor.limits import check_agent_down_time, check_max_rate
from vifdoctor.report import FORMATS
from vifdoctor.rules.catalog import CATALOG
from vifdoctor.rules.plug import FIREWALL_DRIVERS
from vifdoctor.shell import terminal_safe
from vifdoctor.sources.database import db_error, scrub


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 3 with one line, like every other 'could not run'."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_CANNOT_RUN, f"{self.prog}: error: {message} (see --help)\n")


def _add_source_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Neutron database")
    g.add_argument(
        "--neutron-db",
        metavar="URL",
        help="SQLAlchemy URL of Neutron's database, e.g. "
        "mysql+pymysql://user:pw@host/neutron (env VIFDOCTOR_NEUTRON_DB)",
    )
    g.add_argument(
        "--neutron-config-file",
        metavar="FILE",
        action="append",
        default=[],
        help="neutron.conf / ml2_conf.ini / openvswitch_agent.ini to read [database] "
        "connection and [securitygroup] from; repeatable, later files win",
    )
    ovn = p.add_argument_group("OVN (ML2/OVN clouds; read-only, needs vifdoctor[ovn])")
    ovn.add_argument(
        "--ovn-nb-connection",
        metavar="CONN",
        help="OVN Northbound DB as neutron's [ovn] ovn_nb_connection: tcp:IP:PORT, "
        "ssl:IP:PORT, unix:PATH, or a comma list for a cluster (default: "
        "[ovn] in --neutron-config-file; ssl: takes ovn_nb_private_key, "
        "ovn_nb_certificate and ovn_nb_ca_cert from there)",
    )
    ovn.add_argument(
        "--ovn-sb-connection",
        metavar="CONN",
        help="OVN Southbound DB, as --ovn-nb-connection ([ovn] ovn_sb_connection)",
    )
    api = p.add_argument_group("Neutron API (instead of the database; docs/api-mode.md)")
    api.add_argument(
        "--os-cloud",
        metavar="NAME",
        help="read (and repair) through the OpenStack APIs with this clouds.yaml "
        "entry, as an admin; without any database source, OS_CLOUD or the "
        "OS_AUTH_URL/OS_* environment is used the same way",
    )
    api.add_argument(
        "--skip-inactive-bindings",
        action="store_true",
        help="API mode: do not read each VM port's /bindings (one GET per port) "
        "for INACTIVE rows; VD109 is then not judged",
    )
    api.add_argument(
        "--all-inactive-bindings",
        action="store_true",
        help="API mode: read every VM port's /bindings (one GET each), not only "
        "those of ports where Nova's API shows an INACTIVE binding can exist "
        "(a migration, migrating_to, or a host other than Nova's)",
    )
    api.add_argument(
        "--no-nova-api",
        action="store_true",
        help="API mode: do not read Nova's compute API (by default its servers' "
        "hosts and states are read when the cloud has a compute endpoint "
        "and no --nova-db/--nova-api-db is given)",
    )


def _add_nova_options(p: argparse.ArgumentParser, repair: bool = False) -> None:
    g = p.add_argument_group(
        "Nova databases (ports of instances with a move in progress are never written)"
        if repair
        else "Nova databases (optional: add the instances' view)"
    )
    g.add_argument(
        "--nova-db",
        metavar="URL",
        action="append",
        default=[],
        help="a Nova cell database (repeatable: one per cell; env VIFDOCTOR_NOVA_DB)",
    )
    g.add_argument(
        "--nova-api-db",
        metavar="URL",
        help="the nova_api database: its cell_mappings give the cell databases "
        "(env VIFDOCTOR_NOVA_API_DB)",
    )
    g.add_argument(
        "--nova-config-file",
        metavar="FILE",
        action="append",
        default=[],
        help="nova.conf to read [api_database] and [database] connection from; "
        "repeatable, later files win",
    )
    if repair:
        g.add_argument(
            "--without-nova",
            action="store_true",
            help="--code VD206 without Nova: delete every INACTIVE row of a port "
            "that has an ACTIVE one, as neutron-remove-duplicated-port-"
            "bindings does (a live migration under way then breaks)",
        )
        return
    g.add_argument(
        "--stuck-after",
        type=_duration,
        default=6 * 3600.0,
        metavar="DURATION",
        help="a live/cold migration, evacuation or resize not finished this long "
        "after it started is stuck (VD208): e.g. 6h, 90m, 2d, or seconds; "
        "default 6h",
    )


def _add_host_report_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--host-reports",
        metavar="DIR",
        help="a folder of `vifdoctor host-scan` reports: adds each port's live "
        "wiring (VD3xx) and uses it in the remediation plan",
    )


def _add_bundle_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--bundle",
        metavar="FILE",
        help="read an export bundle (`vifdoctor export`) instead of the Neutron and Nova databases",
    )


def _add_rule_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what the hosts and Nova do")
    g.add_argument(
        "--firewall-driver",
        choices=FIREWALL_DRIVERS,
        help="the OVS agents' [securitygroup] firewall_driver, for agents that do not "
        "report ovs_hybrid_plug (before Newton); default: from the config files, "
        "else iptables_hybrid",
    )
    g.add_argument(
        "--nova-generation",
        choices=("modern", "legacy"),
        default="modern",
        help="modern: Nova Ussuri+ (hybrid iff ovs_hybrid_plug); legacy: Icehouse.."
        "Train (also hybrid when Nova's own firewall is not Noop and port_filter "
        "is off); default: modern",
    )
    g.add_argument(
        "--nova-firewall-driver",
        metavar="CLASS",
        help="legacy Nova's [DEFAULT] firewall_driver "
        "(default nova.virt.firewall.NoopFirewallDriver)",
    )
    g.add_argument(
        "--agent-down-time",
        type=_down_time,
        metavar="SECONDS",
        help="an agent is dead when its heartbeat is older than this, by the "
        "database's clock (default: agent_down_time in the config files, else 75)",
    )


def _add_selectors(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("selectors (repeatable; empty means everything)")
    g.add_argument("--host", action="append", default=[], help="bound host")
    g.add_argument("--port", action="append", default=[], metavar="PORT_ID", help="port UUID")
    g.add_argument("--network", action="append", default=[], metavar="NETWORK_ID")
    g.add_argument("--project", action="append", default=[], metavar="PROJECT_ID")
    g.add_argument(
        "--code",
        action="append",
        default=[],
        type=_code,
        help="only findings with this code (e.g. VD101)",
    )


def _add_output_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("output")
    g.add_argument(
        "-f", "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    g.add_argument(
        "-c",
        "--column",
        action="append",
        default=[],
        metavar="COLUMN",
        help="show this column (repeatable); table, csv, value and json rows",
    )


def _add_all_rows_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--all-rows",
        action="store_true",
        help="table: list every row even past 1,000 (default: a summary by host "
        "and codes; -f json/yaml/csv always list every row)",
    )


def _add_write_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("writing")
    g.add_argument(
        "--apply",
        action="store_true",
        help="write to the database (default: only show what would change)",
    )
    g.add_argument(
        "--backup-dir",
        metavar="DIR",
        help="where the backup goes (default: ./vifdoctor-backup-<UTC time>)",
    )
    g.add_argument(
        "--batch-size",
        type=_positive_int,
        help="rows in every transaction (default: adaptive, batches of 500 growing up to "
        "2,000 while each transaction stays under 100 ms)",
    )
    g.add_argument(
        "--max-rate",
        type=_rate,
        metavar="ROWS_PER_SECOND",
        help="pace the writes for a busy database",
    )
    g.add_argument(
        "--retries",
        type=_non_negative_int,
        default=5,
        help="retries of a batch after a lock wait timeout or deadlock (default 5)",
    )
    g.add_argument(
        "--lock-wait-timeout",
        type=_positive_int,
        metavar="SECONDS",
        help="MySQL innodb_lock_wait_timeout for the writing session: fail fast "
        "and retry instead of waiting the server's default",
    )
    g.add_argument(
        "--rebind-method",
        choices=("auto", "profile", "host", "bindings"),
        default="auto",
        help="API mode: how Neutron is made to re-bind a port (auto: profile, the "
        "least disruptive; docs/api-mode.md says what each does)",
    )
    g.add_argument(
        "--via-host",
        metavar="HOST",
        help="API mode, --rebind-method bindings: the host with a live agent the binding visits",
    )
    g.add_argument(
        "--concurrency",
        type=_positive_int,
        default=4,
        help="API mode: ports re-bound at the same time (default 4)",
    )


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> float:
    """``6h``, ``90m``, ``2d``, ``30s`` or a bare number of seconds."""
    raw = text.strip().lower()
    unit = _UNITS.get(raw[-1:], 0)
    number = raw[:-1] if unit else raw
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 6h, 90m)") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _checked(check, text: str) -> float:
    value = _positive_float(text)
    try:
        return check(value)
    except VifdoctorError as exc:  # "--flag must be ...": argparse names the flag itself
        message = str(exc)
        raise argparse.ArgumentTypeError(message[message.find("must ") :]) from None


def _down_time(text: str) -> float:
    return _checked(check_agent_down_time, text)


def _rate(text: str) -> float:
    return _checked(check_max_rate, text)


def _code(text: str) -> str:
    code = text.strip().upper()
    if code not in CATALOG:
        raise argparse.ArgumentTypeError(
            f"unknown code {text!r} (known: {', '.join(sorted(CATALOG))})"
        )
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="vifdoctor",
        description="Find Neutron port bindings that make Nova plug VMs wrong, say what breaks "
        "and when, and repair them safely.",
    )
    parser.add_argument("--version", action="version", version=f"vifdoctor {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    audit = sub.add_parser("audit", help="report every binding Nova will plug wrong (read-only)")
    _add_source_options(audit)
    _add_nova_options(audit)
    _add_host_report_option(audit)
    _add_bundle_option(audit)
    _add_rule_options(audit)
    _add_selectors(audit)
    _add_output_options(audit)
    audit.add_argument(
        "--metrics-file",
        metavar="PATH",
        help="also write Prometheus metrics here, atomically, in node_exporter's "
        "textfile-collector format (even when the audit cannot run: "
        "vifdoctor_up 0); needs vifdoctor[prometheus]",
    )

    explain = sub.add_parser("explain", help="what a finding code means, its impact and remedy")
    explain.add_argument(
        "codes", nargs="*", metavar="CODE", type=_code, help="codes to explain (all when none)"
    )

    remediation = sub.add_parser(
        "remediation",
        help="per host, what each affected instance needs once its bindings "
        "are fixed (read-only; needs Nova's database)",
    )
    _add_source_options(remediation)
    _add_nova_options(remediation)
    _add_host_report_option(remediation)
    _add_bundle_option(remediation)
    _add_rule_options(remediation)
    _add_selectors(remediation)
    _add_output_options(remediation)

    plan = sub.add_parser("plan", help="the exact binding changes a repair would make (read-only)")
    _add_source_options(plan)
    _add_rule_options(plan)
    _add_selectors(plan)
    _add_output_options(plan)
    _add_all_rows_option(plan)
    _add_nova_options(plan, repair=True)
    plan.set_defaults(format=None)  # so that `--sql -f ...` can be refused
    plan.add_argument(
        "--sql",
        action="store_true",
        help="print the equivalent guarded SQL statements instead, for a DBA",
    )
    plan.add_argument(
        "--batch-size",
        type=_positive_int,
        default=500,
        help="rows per transaction in --sql output (default 500)",
    )

    repair = sub.add_parser(
        "repair",
        help="rewrite the flagged bindings: a dry run unless --apply; backed up and guarded",
    )
    _add_source_options(repair)
    _add_nova_options(repair, repair=True)
    _add_rule_options(repair)
    _add_selectors(repair)
    _add_output_options(repair)
    _add_all_rows_option(repair)
    _add_write_options(repair)

    rollback = sub.add_parser(
        "rollback", help="restore the rows of a repair backup (dry run unless --apply)"
    )
    rollback.add_argument("backup", metavar="BACKUP", help="the backup file a repair wrote")
    _add_source_options(rollback)
    _add_output_options(rollback)
    _add_all_rows_option(rollback)
    _add_write_options(rollback)
    rollback.add_argument(
        "--any-database",
        action="store_true",
        help="restore into a database other than the one backed up",
    )

    host_scan = sub.add_parser(
        "host-scan",
        help="record this compute host's live wiring (libvirt, OVS, Linux "
        "bridges) as a JSON report; no database needed",
    )
    host_scan.add_argument(
        "-o", "--output", metavar="FILE", help="write the report here (default: stdout)"
    )
    host_scan.add_argument(
        "--host-name",
        metavar="NAME",
        help="the host name Neutron binds ports to (default: this "
        "machine's hostname; set it when nova.conf [DEFAULT] host "
        "differs)",
    )
    host_scan.add_argument(
        "--libvirt-uri", metavar="URI", help="libvirt connection (default: libvirt's own default)"
    )
    host_scan.add_argument(
        "--ovsdb", metavar="DB", help="OVSDB to read, e.g. unix:/run/openvswitch/db.sock"
    )
    host_scan.add_argument(
        "--iptables",
        action="store_true",
        help="also record the neutron iptables chains (iptables-save)",
    )

    export = sub.add_parser(
        "export",
        help="copy exactly what the audit reads into one SQLite "
        "file, to audit elsewhere with --bundle",
    )
    _add_source_options(export)
    _add_nova_options(export)
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help="the bundle to write (never overwritten)",
    )

    demo = sub.add_parser(
        "demo", help="build a SQLite cloud that reproduces the incident and audit it"
    )
    demo.add_argument(
        "--dir",
        default="vifdoctor-demo",
        help="folder for the demo databases (default: ./vifdoctor-demo)",
    )
    demo.add_argument(
        "--ovn",
        action="store_true",
        help="an ML2/OVN cloud instead: a private OVN NB/SB and ovn-northd "
        "(needs Debian's ovn-central, ovn-common and ovn-host)",
    )
    _add_output_options(demo)
    for p in (parser, *sub.choices.values()):
        _add_logging_options(p, top=p is parser)
    return parser


def _robust_streams() -> None:
    """Text the databases hold but UTF-8 cannot encode (a lone surrogate) is shown escaped."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _add_logging_options(p: argparse.ArgumentParser, top: bool) -> None:
    """--debug / --log-file as the OpenStack CLIs have them, before or after the command."""
    g = p.add_argument_group("logging (passwords are masked)")
    # After the command they only override what was given before it.
    default: dict = {} if top else {"default": argparse.SUPPRESS}
    g.add_argument(
        "-d",
        "--debug",
        action="store_true",
        **({"default": False} | default),
        help="log DEBUG lines (to stderr, or to --log-file)",
    )
    g.add_argument(
        "--log-file",
        metavar="PATH",
        **default,
        help="append INFO (with --debug, DEBUG) log lines to this file, in oslo.log's format",
    )


def main(argv: Sequence[str] | None = None) -> int:
    _robust_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    log_handler = None
    try:
        log_handler = setup_logging(args.debug, args.log_file)
        if args.command == "audit":
            from vifdoctor.cmd.audit import run
        elif args.command == "explain":
            from vifdoctor.cmd.explain import run
        elif args.command == "remediation":
            from vifdoctor.cmd.remediation import run
        elif args.command == "host-scan":
            from vifdoctor.cmd.host_scan import run
        elif args.command == "plan":
            from vifdoctor.cmd.repair import run_plan as run
        elif args.command == "repair":
            from vifdoctor.cmd.repair import run_repair as run
        elif args.command == "rollback":
            from vifdoctor.cmd.repair import run_rollback as run
        elif args.command == "export":
            from vifdoctor.cmd.export import run
        else:
            from vifdoctor.cmd.demo import run
        return run(args, sys.stdout)
    except VifdoctorError as exc:
        print(f"vifdoctor: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except SQLAlchemyError as exc:
        print(f"vifdoctor: error: database: {db_error(exc)}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        print("vifdoctor: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and the like: stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_CANNOT_RUN
    except Exception as exc:  # a bug of ours: still one line, and a way to see more
        if os.environ.get("VIFDOCTOR_DEBUG"):
            raise
        if log_handler is not None:  # the traceback goes to the log, masked
            logging.getLogger("vifdoctor").exception("internal error")
        print(
            f"vifdoctor: internal error: {type(exc).__name__}: {scrub(str(exc))[:300]} "
            "(set VIFDOCTOR_DEBUG=1 or --debug for the traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_CANNOT_RUN
    finally:
        if log_handler is not None:  # main() may run in-process (tests, wrappers)
            logging.getLogger().removeHandler(log_handler)
            logging.getLogger().setLevel(logging.WARNING)
            log_handler.close()


def run_as_command(argv: Sequence[str] | None = None) -> NoReturn:
    """``python -m vifdoctor`` and the ``vifdoctor`` script: :func:`main`, then exit at
    once.

    The interpreter's teardown (freeing every object left, module by module) and the
    freeing of the run's report (collector.keep_until_exit) took 0.3-0.7 s after a
    100,000-row repair (issue 14). Here the exit handlers run (logging's flush, temporary
    files' clean-up), the output is flushed, then ``os._exit``. Where another thread
    that is not a daemon still runs, or this Python has no way to run the exit handlers
    first, the process exits as usual.
    """
    free_at_exit()
    code = main(argv)
    run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    if run_exit_handlers is None or any(not t.daemon for t in others):
        sys.exit(code)
    try:
        sys.stdout.flush()
    except (OSError, ValueError):  # a reader gone (a broken pipe): as main() reports it
        code = code or EXIT_CANNOT_RUN
    run_exit_handlers()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    run_as_command()
