"""An open Neutron source with its settings and agents: what every command starts from."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vifdoctor.model import Agent
from vifdoctor.options import SourceOptions
from vifdoctor.settings import Resolved, resolve
from vifdoctor.sources.database import connect
from vifdoctor.sources.interface import BindingSource, Selectors
from vifdoctor.sources.neutron_db import NeutronDatabase


@dataclass
class NeutronSession:
    settings: Resolved
    engine: Engine | None  # None in API mode
    source: BindingSource
    agents: dict[str, list[Agent]]
    selectors: Selectors


def selectors_of(options: SourceOptions) -> Selectors:
    return Selectors(options.host, options.port, options.network, options.project)


@contextmanager
def neutron_session(options: SourceOptions,
                    settings: Resolved | None = None) -> Iterator[NeutronSession]:
    """Resolve settings (unless given), connect, detect the layout and read the agents."""
    settings = settings or resolve(options)
    selectors = selectors_of(options)
    if settings.api:
        from vifdoctor.sources.neutron_api import NeutronApi, connect_cloud

        with NeutronApi(connect_cloud(settings.cloud), cloud=settings.cloud,
                        inactive=not options.skip_inactive_bindings) as api_source:
            settings.assumptions.extend(api_source.assumptions)
            agents = api_source.agents(settings.agent_down_time)
            yield NeutronSession(settings, None, api_source, agents, selectors)
        return
    assert settings.neutron_url is not None
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            agents = source.agents(settings.agent_down_time)
            yield NeutronSession(settings, engine, source, agents, selectors)
    finally:
        engine.dispose()
