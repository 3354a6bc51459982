"""What each kind of source offers: one Protocol per kind of fact.

The audit, the repair and the public API talk to these and never to a
concrete class, so a new source (a Neutron API, an export bundle, OVN's
databases) is a new module that implements one of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vifdoctor.model import Agent, Binding, HostWiring, Instance, Layout


@dataclass(frozen=True)
class Selectors:
    """Which bindings to read; empty tuples select everything."""

    hosts: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    networks: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()


EVERYTHING = Selectors()


@runtime_checkable
class BindingSource(Protocol):
    """Neutron's port bindings and agents (its database, or its API)."""

    layout: Layout | None

    @property
    def assumptions(self) -> list[str]:
        """What this source cannot show, said in every report made from it."""
        ...

    def describe(self) -> dict:
        """The source and its schema layout, as reports print them (no password)."""
        ...

    def agents(self, down_time: float) -> dict[str, list[Agent]]:
        """Every agent by host; alive means a heartbeat within ``down_time``."""
        ...

    def bindings(self, selectors: Selectors = EVERYTHING) -> Iterator[Binding]:
        """Every selected binding: the live ones, then the inactive ones."""
        ...

    def repair_candidates(
        self, selectors: Selectors = EVERYTHING, vif_types: frozenset[str] = frozenset()
    ) -> Iterator[Binding]:
        """At least every live VM-port binding of these vif_types (all when empty)."""
        ...

    def other_bindings(self, selectors: Selectors = EVERYTHING) -> Iterator[Binding]:
        """Live bindings of ports that are not VM ports, then inactive bindings (a source
        may leave VM ports' INACTIVE rows to compute_bindings_by_device instead)."""
        ...

    def compute_bindings_by_device(
        self, selectors: Selectors = EVERYTHING, read_ahead: bool = False
    ) -> Iterator[Binding]:
        """Live bindings of VM ports in byte-wise device_id order, for a merge with Nova;
        a source may add their INACTIVE rows here, then judged with the instance's moves.

        ``read_ahead``: the caller will wait on something else (a Nova worker) after the
        first row; a source may read every row ahead into a local file meanwhile.
        """
        ...

    def bound_hosts(self, port_ids: list[str]) -> dict[str, str]:
        """The host each of these ports is bound to (its live binding)."""
        ...


@runtime_checkable
class InstanceSource(Protocol):
    """Nova's instances with their network info caches (its cell databases, or its API)."""

    def describe(self) -> list[dict]:
        """The cells read, as reports print them (no password)."""
        ...

    def instances(self) -> Iterator[Instance]:
        """Every instance in byte-wise uuid order (a uuid may come once per cell)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class HostWiringSource(Protocol):
    """The compute hosts' live wiring (host-scan reports, ...)."""

    def reports(self) -> tuple[Mapping[str, HostWiring], list[str]]:
        """Each host's wiring by host name, and one note per input that could not be used.

        A mapping, not necessarily a dict: it may look each host up on disk (host_index).
        """
        ...
