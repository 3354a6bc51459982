"""An open Neutron source with its settings and agents: what every command starts from."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from vifdoctor.model import Agent
from vifdoctor.options import SourceOptions
from vifdoctor.ovn_join import OvnJoin, open_ovn
from vifdoctor.settings import Resolved, resolve
from vifdoctor.sources.database import connect, scrub
from vifdoctor.sources.interface import BindingSource, Selectors
from vifdoctor.sources.neutron_db import NeutronDatabase

LOG = logging.getLogger(__name__)


@dataclass
class NeutronSession:
    settings: Resolved
    engine: Engine | None  # None in API mode
    source: BindingSource
    agents: dict[str, list[Agent]]
    selectors: Selectors

    def open_ovn(self, options: SourceOptions) -> tuple[OvnJoin | None, list[str]]:
        """OVN's NB/SB beside this session's Neutron, when the options (or [ovn]) name
        them: ``ovn_join.open_ovn`` with the session's agents and settings."""
        return open_ovn(
            options.ovn_nb_connection,
            options.ovn_sb_connection,
            options.neutron_config_file,
            self.source,
            self.agents,
            self.settings.context,
            self.settings.agent_down_time,
        )


def selectors_of(options: SourceOptions) -> Selectors:
    return Selectors(options.host, options.port, options.network, options.project)


@contextmanager
def neutron_session(
    options: SourceOptions, settings: Resolved | None = None
) -> Iterator[NeutronSession]:
    """Resolve settings (unless given), connect, detect the layout and read the agents."""
    settings = settings or resolve(options)
    selectors = selectors_of(options)
    LOG.debug("settings from: %s", settings.origins)
    if settings.api:
        from vifdoctor.sources.neutron_api import NeutronApi, connect_cloud

        LOG.info("reading Neutron through its API (cloud %s)", settings.cloud or "from OS_*")

        with NeutronApi(
            connect_cloud(settings.cloud),
            cloud=settings.cloud,
            inactive=not options.skip_inactive_bindings,
        ) as api_source:
            settings.assumptions.extend(api_source.assumptions)
            agents = api_source.agents(settings.agent_down_time)
            yield NeutronSession(settings, None, api_source, agents, selectors)
        return
    assert settings.neutron_url is not None
    LOG.info(
        "reading Neutron's database %s (%s)",
        scrub(settings.neutron_url),
        settings.origins.get("source"),
    )
    engine = connect(settings.neutron_url, what="Neutron database")
    try:
        with NeutronDatabase(engine) as source:
            agents = source.agents(settings.agent_down_time)
            LOG.info(
                "schema layout %s; %d agent(s) on %d host(s)",
                source.describe().get("layout"),
                sum(map(len, agents.values())),
                len(agents),
            )
            yield NeutronSession(settings, engine, source, agents, selectors)
    finally:
        engine.dispose()
