"""Turning flags, config files and environment into one resolved set of settings.

Precedence, for every setting: an explicit flag, then the config files given
(later files win), then the environment (for the database URL), then the
documented default. Every default that changes a verdict is written into the
output's ``assumptions``, so a reader knows what the findings rest on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import NovaGeneration
from vifdoctor.rules.plug import (
    FIREWALL_DRIVERS,
    FW_IPTABLES_HYBRID,
    NOVA_NOOP_FIREWALL,
    FirewallAssumption,
    RuleContext,
    normalize_firewall_driver,
)
from vifdoctor.sources.config import read_neutron_config

ENV_NEUTRON_DB = "VIFDOCTOR_NEUTRON_DB"
DEFAULT_AGENT_DOWN_TIME = 75


@dataclass
class Resolved:
    neutron_url: str
    context: RuleContext
    agent_down_time: float
    assumptions: list[str] = field(default_factory=list)


def resolve(
    *,
    neutron_db: str | None,
    neutron_config_files: list[str],
    firewall_driver: str | None,
    nova_generation: str,
    nova_firewall_driver: str | None,
    agent_down_time: float | None,
) -> Resolved:
    conf = read_neutron_config(neutron_config_files)
    url = neutron_db or conf.connection or os.environ.get(ENV_NEUTRON_DB)
    if not url:
        raise VifdoctorError(
            "no Neutron database: pass --neutron-db URL, --neutron-config-file FILE "
            f"(with [database] connection), or set {ENV_NEUTRON_DB}"
        )
    notes: list[str] = []

    explicit = True
    if firewall_driver:
        fw = normalize_firewall_driver(firewall_driver)
        if fw is None:
            raise VifdoctorError(f"unknown --firewall-driver {firewall_driver!r}")
        firewall = FirewallAssumption(fw, "--firewall-driver")
    elif conf.firewall_driver is not None:
        fw = normalize_firewall_driver(conf.firewall_driver)
        if fw is None:
            raise VifdoctorError(
                f"unknown [securitygroup] firewall_driver {conf.firewall_driver!r} in "
                f"{conf.firewall_driver_file}: pass --firewall-driver "
                f"{'|'.join(FIREWALL_DRIVERS)}"
            )
        firewall = FirewallAssumption(fw, f"[securitygroup] firewall_driver in "
                                          f"{conf.firewall_driver_file}")
    else:
        explicit = False
        firewall = FirewallAssumption(
            FW_IPTABLES_HYBRID, "default: iptables_hybrid, the OVS agent's default before Newton"
        )
    notes.append(
        f"agents that do not report ovs_hybrid_plug (before Newton) are taken to run "
        f"firewall_driver={firewall.driver} ({firewall.source})"
    )

    sg = True if conf.enable_security_group is None else conf.enable_security_group
    notes.append(
        f"security groups {'enabled' if sg else 'disabled'} "
        f"({'default' if conf.enable_security_group is None else 'from the config files'})"
    )

    generation = NovaGeneration(nova_generation)
    nova_fw = nova_firewall_driver or NOVA_NOOP_FIREWALL
    if generation is NovaGeneration.MODERN:
        notes.append("Nova is Ussuri or later: it plugs hybrid only when "
                     "vif_details.ovs_hybrid_plug is true (--nova-generation modern)")
    else:
        notes.append(f"Nova is Icehouse..Train: it plugs hybrid when ovs_hybrid_plug is true, "
                     f"or port_filter is off and its firewall_driver={nova_fw} is not Noop "
                     f"(--nova-generation legacy)")

    if agent_down_time is not None:
        down, down_from = agent_down_time, "--agent-down-time"
    elif conf.agent_down_time is not None:
        down, down_from = conf.agent_down_time, "agent_down_time in the config files"
    else:
        down, down_from = DEFAULT_AGENT_DOWN_TIME, "default"
    if down <= 0:
        raise VifdoctorError(f"agent down time must be positive, got {down}")
    notes.append(f"an agent is alive when its heartbeat is within {down:g} s of the "
                 f"database's clock ({down_from})")

    ctx = RuleContext(
        firewall=firewall,
        firewall_explicit=explicit,
        enable_security_group=sg,
        nova_generation=generation,
        nova_firewall_driver=nova_fw,
    )
    return Resolved(url, ctx, float(down), notes)
