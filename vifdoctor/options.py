"""What a caller asks of vifdoctor: one frozen dataclass per kind of command.

The field names are the command line's long flags (``--neutron-db`` is
``neutron_db``), so ``vifdoctor.api.audit(neutron_db=URL, host=["c1"])`` and
``vifdoctor audit --neutron-db URL --host c1`` ask the same thing. Repeatable
flags are tuples; a list given as a keyword argument is turned into one.
Nothing here reads a file or the environment: :mod:`vifdoctor.settings`
resolves these against config files, environment and defaults, once.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

from vifdoctor.errors import VifdoctorError

T = TypeVar("T", bound="SourceOptions")


@dataclass(frozen=True)
class SourceOptions:
    """Where Neutron's bindings come from, and which of them to read."""

    neutron_db: str | None = None
    neutron_config_file: tuple[str, ...] = ()
    os_cloud: str | None = None
    skip_inactive_bindings: bool = False
    all_inactive_bindings: bool = False
    no_nova_api: bool = False
    # what the hosts and Nova do
    firewall_driver: str | None = None
    nova_generation: str = "modern"
    nova_firewall_driver: str | None = None
    agent_down_time: float | None = None
    # OVN's databases (neutron's [ovn] ovn_nb_connection/ovn_sb_connection syntax)
    ovn_nb_connection: str | None = None
    ovn_sb_connection: str | None = None
    # selectors (empty: everything)
    host: tuple[str, ...] = ()
    port: tuple[str, ...] = ()
    network: tuple[str, ...] = ()
    project: tuple[str, ...] = ()
    code: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                object.__setattr__(self, f.name, tuple(value))

    @classmethod
    def of(cls: type[T], options: T | None = None, /, **kwargs: Any) -> T:
        """The options given, or built from keyword arguments named as the long flags."""
        if options is not None:
            if kwargs:
                return dataclasses.replace(options, **kwargs)
            return options
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise VifdoctorError(f"unknown option(s) for {cls.__name__}: {', '.join(unknown)}")
        return cls(**kwargs)

    @property
    def narrowed_to_ports(self) -> bool:
        """Whether a selector other than --host narrows the ports read."""
        return bool(self.port or self.network or self.project)

    @property
    def full(self) -> bool:
        """Whether no selector narrows the read at all."""
        return not (self.host or self.narrowed_to_ports)


@dataclass(frozen=True)
class AuditOptions(SourceOptions):
    """``audit`` and ``remediation``: Neutron, plus Nova and host reports when given."""

    nova_db: tuple[str, ...] = ()
    nova_api_db: str | None = None
    nova_config_file: tuple[str, ...] = ()
    host_reports: str | None = None
    stuck_after: float = 6 * 3600.0  # seconds: a move older than this is stuck (VD208)
    bundle: str | None = None  # an export bundle instead of the databases (sources/bundle.py)


@dataclass(frozen=True)
class WriteOptions:
    """How the writing commands write: always a dry run unless ``apply``."""

    apply: bool = False
    backup_dir: str | None = None
    batch_size: int | None = None  # rows per transaction; None: adaptive (docs/output.md)
    max_rate: float | None = None
    retries: int = 5
    lock_wait_timeout: int | None = None


@dataclass(frozen=True)
class RepairOptions(SourceOptions, WriteOptions):
    """``plan`` and ``repair``; the API-mode re-bind settings apply with ``os_cloud``."""

    rebind_method: str = "auto"
    via_host: str | None = None
    concurrency: int = 4
    # Nova: ports of instances with a move in progress are never written (any code)
    nova_db: tuple[str, ...] = ()
    nova_api_db: str | None = None
    nova_config_file: tuple[str, ...] = ()
    without_nova: bool = False  # VD206 only: delete as the peer tool does, unprotected


@dataclass(frozen=True)
class RollbackOptions(SourceOptions, WriteOptions):
    """``rollback``: the database to restore into, and whether it may be another one."""

    any_database: bool = False
