"""Glue shared by the commands: settings -> an open Neutron source with its agents."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vifdoctor.model import Agent
from vifdoctor.settings import Resolved, resolve
from vifdoctor.sources.database import connect
from vifdoctor.sources.neutron_db import NeutronDatabase, Selectors


@dataclass
class NeutronSession:
    settings: Resolved
    engine: Engine
    source: NeutronDatabase
    agents: dict[str, list[Agent]]
    selectors: Selectors


def resolve_args(args: argparse.Namespace) -> Resolved:
    return resolve(
        neutron_db=args.neutron_db,
        neutron_config_files=args.neutron_config_file,
        firewall_driver=getattr(args, "firewall_driver", None),
        nova_generation=getattr(args, "nova_generation", "modern"),
        nova_firewall_driver=getattr(args, "nova_firewall_driver", None),
        agent_down_time=getattr(args, "agent_down_time", None),
    )


@contextmanager
def neutron_session(args: argparse.Namespace) -> Iterator[NeutronSession]:
    """Resolve settings, connect, detect the layout and read the agents."""
    settings = resolve_args(args)
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            agents = source.agents(settings.agent_down_time)
            selectors = Selectors(tuple(args.host), tuple(args.port), tuple(args.network),
                                  tuple(args.project))
            yield NeutronSession(settings, engine, source, agents, selectors)
    finally:
        engine.dispose()
