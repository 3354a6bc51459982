"""Options, config files and environment resolved once into the settings a run uses.

Precedence, for every setting, in this one place: an explicit option (flag or
keyword argument), then the config files given (later files win), then the
environment, then the documented default. Each resolved value keeps where it
came from, and every default that changes a verdict is written into the
output's ``assumptions``, so a reader knows what the findings rest on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vifdoctor.errors import VifdoctorError
from vifdoctor.limits import check_agent_down_time
from vifdoctor.model import NovaGeneration
from vifdoctor.options import AuditOptions, SourceOptions
from vifdoctor.rules.plug import (
    FIREWALL_DRIVERS,
    FW_IPTABLES_HYBRID,
    NOVA_NOOP_FIREWALL,
    FirewallAssumption,
    RuleContext,
    normalize_firewall_driver,
)
from vifdoctor.sources import bundle
from vifdoctor.sources.config import read_neutron_config
from vifdoctor.sources.nova_db import (
    ENV_NOVA_API_DB,
    ENV_NOVA_DB,
    CellSource,
    cell_name,
    discover_cells,
    read_nova_config,
)

ENV_NEUTRON_DB = "VIFDOCTOR_NEUTRON_DB"
DEFAULT_AGENT_DOWN_TIME = 75


@dataclass
class Resolved:
    """The settings of one run, each with where it came from."""

    neutron_url: str | None  # None in API mode
    context: RuleContext
    agent_down_time: float
    api: bool = False  # read Neutron (and Nova) through the OpenStack APIs
    cloud: str | None = None  # the clouds.yaml entry in API mode
    assumptions: list[str] = field(default_factory=list)
    origins: dict[str, str] = field(default_factory=dict)  # setting -> where it came from


def api_mode(options: SourceOptions) -> tuple[bool, str | None, str]:
    """Whether to read Neutron's API instead of its database, the cloud, and why.

    --os-cloud wins; a database named any way (--neutron-db, [database] connection,
    VIFDOCTOR_NEUTRON_DB) comes next; then OS_CLOUD / OS_AUTH_URL from the environment.
    """
    if options.os_cloud and options.neutron_db:
        raise VifdoctorError("--os-cloud and --neutron-db name two sources: give one")
    if options.os_cloud:
        return True, options.os_cloud, "--os-cloud"
    if options.neutron_db or os.environ.get(ENV_NEUTRON_DB):
        return False, None, ""
    if read_neutron_config(list(options.neutron_config_file)).connection:
        return False, None, ""
    if os.environ.get("OS_CLOUD") or os.environ.get("OS_AUTH_URL"):
        return True, os.environ.get("OS_CLOUD") or None, "environment (OS_CLOUD/OS_AUTH_URL)"
    return False, None, ""


def resolve(options: SourceOptions) -> Resolved:
    """Every setting of a Neutron-reading run, resolved once."""
    api, cloud, api_origin = api_mode(options)
    conf = read_neutron_config(list(options.neutron_config_file))
    origins: dict[str, str] = {}
    url: str | None = None
    if api:
        origins["source"] = f"Neutron API ({api_origin})"
    elif getattr(options, "bundle", None):
        path = options.bundle  # type: ignore[attr-defined]
        if options.neutron_db or getattr(options, "nova_db", None):
            raise VifdoctorError(
                "--bundle replaces --neutron-db and --nova-db: give one or the other"
            )
        url, origins["source"] = bundle.url(path), "--bundle"
    elif options.neutron_db:
        url, origins["source"] = options.neutron_db, "--neutron-db"
    elif conf.connection:
        url, origins["source"] = conf.connection, "[database] connection in the config files"
    elif os.environ.get(ENV_NEUTRON_DB):
        url, origins["source"] = os.environ[ENV_NEUTRON_DB], ENV_NEUTRON_DB
    else:
        raise VifdoctorError(
            "no Neutron database: pass --neutron-db URL, --neutron-config-file FILE "
            f"(with [database] connection), or set {ENV_NEUTRON_DB}"
        )
    notes: list[str] = []
    if getattr(options, "bundle", None):
        notes.append(bundle.describe(options.bundle))  # type: ignore[attr-defined]

    explicit = True
    if options.firewall_driver:
        fw = normalize_firewall_driver(options.firewall_driver)
        if fw is None:
            raise VifdoctorError(f"unknown --firewall-driver {options.firewall_driver!r}")
        firewall = FirewallAssumption(fw, "--firewall-driver")
    elif conf.firewall_driver is not None:
        fw = normalize_firewall_driver(conf.firewall_driver)
        if fw is None:
            raise VifdoctorError(
                f"unknown [securitygroup] firewall_driver {conf.firewall_driver!r} in "
                f"{conf.firewall_driver_file}: pass --firewall-driver "
                f"{'|'.join(FIREWALL_DRIVERS)}"
            )
        firewall = FirewallAssumption(
            fw, f"[securitygroup] firewall_driver in {conf.firewall_driver_file}"
        )
    else:
        explicit = False
        firewall = FirewallAssumption(
            FW_IPTABLES_HYBRID, "default: iptables_hybrid, the OVS agent's default before Newton"
        )
    origins["firewall_driver"] = firewall.source
    notes.append(
        f"agents that do not report ovs_hybrid_plug (before Newton) are taken to run "
        f"firewall_driver={firewall.driver} ({firewall.source})"
    )

    sg = True if conf.enable_security_group is None else conf.enable_security_group
    origins["enable_security_group"] = (
        "default" if conf.enable_security_group is None else "the config files"
    )
    notes.append(
        f"security groups {'enabled' if sg else 'disabled'} "
        f"({'default' if conf.enable_security_group is None else 'from the config files'})"
    )

    try:
        generation = NovaGeneration(options.nova_generation)
    except ValueError:
        raise VifdoctorError(
            f"unknown --nova-generation {options.nova_generation!r} (modern or legacy)"
        ) from None
    nova_fw = options.nova_firewall_driver or NOVA_NOOP_FIREWALL
    if generation is NovaGeneration.MODERN:
        notes.append(
            "Nova is Ussuri or later: it plugs hybrid only when "
            "vif_details.ovs_hybrid_plug is true (--nova-generation modern)"
        )
    else:
        notes.append(
            f"Nova is Icehouse..Train: it plugs hybrid when ovs_hybrid_plug is true, "
            f"or port_filter is off and its firewall_driver={nova_fw} is not Noop "
            f"(--nova-generation legacy)"
        )

    if options.agent_down_time is not None:
        down, down_from = options.agent_down_time, "--agent-down-time"
    elif conf.agent_down_time is not None:
        down, down_from = conf.agent_down_time, "agent_down_time in the config files"
    else:
        down, down_from = DEFAULT_AGENT_DOWN_TIME, "default"
    if not down > 0:
        raise VifdoctorError(f"agent down time must be positive, got {down}")
    down = check_agent_down_time(down, down_from)
    origins["agent_down_time"] = down_from
    clock = "the Neutron API server's clock (HTTP Date)" if api else "the database's clock"
    notes.append(
        f"an agent is alive when its heartbeat is within {down:g} s of {clock} ({down_from})"
    )

    ctx = RuleContext(
        firewall=firewall,
        firewall_explicit=explicit,
        enable_security_group=sg,
        nova_generation=generation,
        nova_firewall_driver=nova_fw,
    )
    return Resolved(url, ctx, float(down), api=api, cloud=cloud, assumptions=notes, origins=origins)


def resolve_cells(options: AuditOptions) -> list[CellSource]:
    """The Nova cells to read: flags, then config files, then the environment; [] for none."""
    if options.bundle:
        return bundle.cells(options.bundle)
    api_conf, db_conf = read_nova_config(list(options.nova_config_file))
    if options.nova_db:
        return [CellSource(cell_name(u, i), u) for i, u in enumerate(options.nova_db)]
    api = options.nova_api_db or api_conf or os.environ.get(ENV_NOVA_API_DB)
    if api:
        return discover_cells(api, db_conf)
    if options.nova_config_file and not (api_conf or db_conf):
        raise VifdoctorError(
            f"--nova-config-file {', '.join(options.nova_config_file)} sets neither "
            "[api_database] nor [database] connection: Nova cannot be read (give --nova-db "
            "or --nova-api-db, or drop --nova-config-file)"
        )
    env_db = os.environ.get(ENV_NOVA_DB)
    if db_conf or env_db:
        url = db_conf or env_db
        assert url is not None
        return [CellSource(cell_name(url, 0), url)]
    return []
