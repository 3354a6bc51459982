"""Glue shared by the commands: settings -> an open Neutron source with its agents."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Agent
from vifdoctor.settings import ENV_NEUTRON_DB, Resolved, resolve
from vifdoctor.sources.config import read_neutron_config
from vifdoctor.sources.database import connect
from vifdoctor.sources.neutron_db import NeutronDatabase, Selectors

#: Placeholder "URL" handed to settings.resolve in API mode (it never opens it).
API_SOURCE = "neutron-api"


@dataclass
class NeutronSession:
    settings: Resolved
    engine: Engine | None  # None in API mode
    source: Any  # NeutronDatabase, or sources.neutron_api.NeutronApi (same interface)
    agents: dict[str, list[Agent]]
    selectors: Selectors


def api_cloud(args: argparse.Namespace) -> tuple[bool, str | None]:
    """Whether to read Neutron's API (and which clouds.yaml entry) instead of its database.

    --os-cloud wins; a database named any way (--neutron-db, [database] connection,
    VIFDOCTOR_NEUTRON_DB) comes next; then OS_CLOUD / OS_AUTH_URL from the environment.
    """
    cloud = getattr(args, "os_cloud", None)
    if cloud and getattr(args, "neutron_db", None):
        raise VifdoctorError("--os-cloud and --neutron-db name two sources: give one")
    if cloud:
        return True, cloud
    if getattr(args, "neutron_db", None) or os.environ.get(ENV_NEUTRON_DB):
        return False, None
    if read_neutron_config(getattr(args, "neutron_config_file", [])).connection:
        return False, None
    if os.environ.get("OS_CLOUD") or os.environ.get("OS_AUTH_URL"):
        return True, os.environ.get("OS_CLOUD") or None
    return False, None


def resolve_args(args: argparse.Namespace) -> Resolved:
    api = api_cloud(args)[0]
    settings = resolve(
        neutron_db=API_SOURCE if api else args.neutron_db,
        neutron_config_files=args.neutron_config_file,
        firewall_driver=getattr(args, "firewall_driver", None),
        nova_generation=getattr(args, "nova_generation", "modern"),
        nova_firewall_driver=getattr(args, "nova_firewall_driver", None),
        agent_down_time=getattr(args, "agent_down_time", None),
    )
    if api:
        settings.assumptions = [a.replace("the database's clock", "the Neutron API server's "
                                          "clock (HTTP Date)") for a in settings.assumptions]
    return settings


@contextmanager
def neutron_session(args: argparse.Namespace) -> Iterator[NeutronSession]:
    """Resolve settings, connect, detect the layout and read the agents."""
    settings = resolve_args(args)
    selectors = Selectors(tuple(args.host), tuple(args.port), tuple(args.network),
                          tuple(args.project))
    api, cloud = api_cloud(args)
    if api:
        from vifdoctor.sources.neutron_api import NeutronApi, connect_cloud

        skip = getattr(args, "skip_inactive_bindings", False)
        with NeutronApi(connect_cloud(cloud), cloud=cloud, inactive=not skip) as api_source:
            settings.assumptions.extend(api_source.assumptions)
            agents = api_source.agents(settings.agent_down_time)
            yield NeutronSession(settings, None, api_source, agents, selectors)
        return
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            agents = source.agents(settings.agent_down_time)
            yield NeutronSession(settings, engine, source, agents, selectors)
    finally:
        engine.dispose()
