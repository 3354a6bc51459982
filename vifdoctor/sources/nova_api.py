"""Nova's compute API as a source of instances (API mode), read-only.

Same interface as :class:`vifdoctor.sources.nova_db.NovaCells` (``describe()``,
``instances()`` in uuid order, ``close()``), from ``GET /servers/detail?all_tenants``
through openstacksdk's compute proxy (raw pages by marker, microversion 2.1), as an
admin: host, hypervisor hostname, vm/power/task state and name of every server.

What the API cannot show, and what that leaves unjudged:

* deleted servers are not listed: a port whose instance is deleted is reported
  as VD204 "unknown to the Nova cells read", not "soft-deleted";
* the network info cache (``instance_info_caches.network_info``): the server's
  ``addresses`` come from it but name no port, and ``/servers/{id}/os-interface``
  lists Neutron's ports (nova asks Neutron for it), not the cache. Instances
  are therefore yielded with ``cache_known=False``: the rules do not judge the
  cache codes (VD201, VD203, VD205, :data:`CACHE_CODES`) for them.

Moves come from ``GET /os-migrations`` (microversion 2.59: uuid, type, paging by
marker), every status Nova keeps, as the database path reads them. Not from
``GET /servers/{id}/migrations``: its allow-list (``queued``, ``preparing``,
``running``, ``post-migrating``) hides a resize in ``finished`` awaiting
confirmation, whose source binding a revert needs. ``/os-migrations`` leaves out
hidden records (a cross-cell resize's other copy). Their ages are measured against
the API server's clock (HTTP Date). A cloud whose policy refuses the listing is
audited with moves judged by task_state, and the report says so.

Servers are sorted by id in memory (one small record per server): API mode is
meant for clouds of moderate size; use the Nova databases for very large ones.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Instance, Migration
from vifdoctor.sources.neutron_api import (
    _parse_time,
    _quiet_sdk,
    _server_time,
    api_error,
    inactive_possible,
    scrub,
)

#: Codes judged from Nova's network info cache, which the compute API does not show.
CACHE_CODES = frozenset({"VD201", "VD203", "VD205"})
CELL_NAME = "nova-api"
PAGE_SIZE = 1000  # nova's default [api] max_limit
MIGRATIONS_MICROVERSION = "2.59"  # uuid, migration_type, limit/marker paging

NOVA_API_ASSUMPTIONS = (
    "Nova API mode: instances come from Nova's compute API (GET /servers/detail, all "
    "projects): deleted servers are not listed, so VD204 names their ports' instances "
    "as unknown rather than soft-deleted",
    "Nova API mode: the API does not show Nova's network info cache, so VD201, VD203 and "
    "VD205 are not judged and each port's current wiring is unknown (give --nova-api-db or "
    "--nova-db, or --host-reports, for those)",
)


class NovaApiUnavailable(VifdoctorError):
    """The cloud has no usable compute endpoint: audit without Nova, and say so."""


class NovaApiCells:
    """All servers of a cloud through the compute API, as one uuid-ordered stream."""

    def __init__(self, conn: Any, *, cloud: str | None = None, page_size: int = PAGE_SIZE):
        self.connection = conn
        self.cloud = cloud
        self.page_size = page_size
        self.endpoint = ""
        self.servers_read = 0
        self._servers: list[Instance] | None = None  # read once, for the hint and the join
        self._moved: set[str] | None = None  # instances os-migrations lists
        self.reads_migrations = False  # /os-migrations listed (else moves: task_state only)
        self.now: datetime.datetime | None = None  # the API server's clock (HTTP Date)
        self.migrations_note = ""

    def open(self) -> NovaApiCells:
        """Find the compute endpoint and check an admin may list all projects' servers.

        Raises :class:`NovaApiUnavailable` when there is no compute service (no
        endpoint, or one that is not a compute API), :class:`VifdoctorError` when
        it is there but refuses the listing.
        """
        try:
            with _quiet_sdk():
                self.endpoint = str(self.connection.compute.get_endpoint() or "")
                response = self.connection.compute.get(
                    "/servers/detail?all_tenants=1&limit=1", raise_exc=False
                )
        except Exception as exc:  # no endpoint in the catalog, discovery failed, unreachable
            raise NovaApiUnavailable(str(api_error(exc, "Nova API"))) from None
        if response.status_code in (401, 403):
            raise VifdoctorError(
                f"Nova API: HTTP {response.status_code} listing the servers of all projects "
                "(needs an admin account; --no-nova-api audits without Nova)"
            )
        if response.status_code >= 400 or "servers" not in _json(response):
            raise NovaApiUnavailable(
                f"Nova API: {scrub(self.endpoint)} does not list servers "
                f"(HTTP {response.status_code}): not a compute endpoint"
            )
        return self

    def describe(self) -> list[dict]:
        return [
            {
                "cell": CELL_NAME,
                "url": scrub(self.endpoint),
                "dialect": "compute-api",
                "cloud": self.cloud or "(OS_* environment)",
            }
        ]

    def close(self) -> None:
        """The connection belongs to the caller (it is shared with the Neutron source)."""

    def servers(self) -> list[Instance]:
        """Every listed server in uuid order (read once)."""
        if self._servers is not None:
            return self._servers
        found: list[Instance] = []
        # Raw pages, not the SDK's Server objects (building those took about 90 s of
        # client time for 16,323 servers, against nova's 138 s to answer: issue 14), and
        # no microversion: 2.1 shows host, node and states to an admin.
        url = f"/servers/detail?all_tenants=1&limit={self.page_size}"
        while url:
            try:
                with _quiet_sdk():
                    response = self.connection.compute.get(url, raise_exc=False)
            except Exception as exc:
                raise api_error(exc, "Nova API") from None
            if response.status_code >= 400:
                raise VifdoctorError(
                    f"Nova API: HTTP {response.status_code} listing the servers of all projects"
                )
            body = _json(response)
            page = body.get("servers") or []
            found.extend(to_instance(server) for server in page)
            # nova links the next page when this one is full (its [api] max_limit may be
            # below the limit asked for): go on from the last server, as the link says
            url = ""
            if page and any(link.get("rel") == "next" for link in body.get("servers_links", [])):
                url = (
                    f"/servers/detail?all_tenants=1&limit={self.page_size}"
                    f"&marker={quote(str(page[-1].get('id')), safe='')}"
                )
        self.servers_read = len(found)
        found.sort(key=lambda inst: inst.uuid)
        moves = self._migrations()
        if moves is not None:
            for inst in found:
                inst.migrations = moves.get(inst.uuid, [])
        self._servers, self._moved = found, (None if moves is None else set(moves))
        return found

    def instances(self) -> Iterator[Instance]:
        """Every listed server in uuid order (code point order, as the merge-join needs)."""
        yield from self.servers()

    def inactive_scope(self) -> Callable[[dict], bool] | None:
        """Which Neutron ports (as the API lists them) can hold an INACTIVE binding; None
        when Nova does not list its migrations (then every VM port is asked)."""
        servers = self.servers()
        moved = self._moved
        if moved is None:
            return None
        hosts = {inst.uuid: inst.host for inst in servers}
        return lambda port: inactive_possible(port, moved, hosts)

    def lookup(self, uuids: Sequence[str]) -> list[Instance]:
        """These servers with their moves, read now (a repair's re-check before writing);
        a server the API does not show (deleted, or unknown) is left out."""
        found = []
        for uuid in uuids:
            try:
                with _quiet_sdk():
                    response = self.connection.compute.get(f"/servers/{uuid}", raise_exc=False)
            except Exception as exc:
                raise api_error(exc, "Nova API") from None
            if response.status_code == 404:
                continue
            if response.status_code >= 400:
                raise VifdoctorError(f"Nova API: HTTP {response.status_code} showing server {uuid}")
            inst = to_instance(_json(response).get("server") or {})
            moves = self._migrations(f"instance_uuid={uuid}")
            inst.migrations = moves.get(uuid, []) if moves is not None else None
            found.append(inst)
        return found

    def _migrations(self, query: str = "") -> dict[str, list[Migration]] | None:
        """Every migration record by instance, oldest first; None when Nova refuses."""
        by_instance: dict[str, list[Migration]] = {}
        marker = ""
        while True:
            url = (
                f"/os-migrations?limit={self.page_size}"
                + (f"&{query}" if query else "")
                + (f"&marker={marker}" if marker else "")
            )
            try:
                with _quiet_sdk():
                    response = self.connection.compute.get(
                        url, microversion=MIGRATIONS_MICROVERSION, raise_exc=False
                    )
            except Exception as exc:
                raise api_error(exc, "Nova API") from None
            if response.status_code >= 400:
                self.migrations_note = (
                    f"Nova API mode: GET /os-migrations answered HTTP "
                    f"{response.status_code}: moves are judged by "
                    "task_state only, INACTIVE rows stay VD109"
                )
                return None
            self.now = self.now or _server_time(response)
            page = _json(response).get("migrations") or []
            for item in page:
                m = to_migration(item)
                by_instance.setdefault(m.instance_uuid, []).append(m)
            if len(page) < self.page_size or not page:
                break
            marker = str(page[-1].get("uuid") or "")
            if not marker:
                break
        self.reads_migrations = True
        for moves in by_instance.values():
            moves.sort(key=lambda m: (m.created_at or datetime.datetime.min, m.id))
        return by_instance


def open_from_neutron_api(source: Any) -> tuple[NovaApiCells | None, list[str]]:
    """Nova through the same cloud as the Neutron API source, or None and why not."""
    cells = NovaApiCells(source.connection, cloud=getattr(source, "cloud", None))
    try:
        return cells.open(), list(NOVA_API_ASSUMPTIONS)
    except NovaApiUnavailable as exc:
        return None, [f"Nova API mode: Nova not read ({exc}): VD2xx not judged"]


def to_instance(server: Any) -> Instance:
    """An openstacksdk Server (or its body as a dict) as an Instance without a cache."""

    def get(attr: str, key: str) -> Any:
        if type(server) is dict:  # an SDK Resource is a dict too, keyed by attribute name
            return server.get(key)
        return getattr(server, attr, None)

    power = get("power_state", "OS-EXT-STS:power_state")
    return Instance(
        uuid=str(get("id", "id")),
        cell=CELL_NAME,
        name=get("name", "name") or "",
        host=get("compute_host", "OS-EXT-SRV-ATTR:host") or "",
        node=get("hypervisor_hostname", "OS-EXT-SRV-ATTR:hypervisor_hostname") or "",
        vm_state=get("vm_state", "OS-EXT-STS:vm_state") or "",
        power_state=int(power) if isinstance(power, (int, str)) and str(power).isdigit() else None,
        task_state=get("task_state", "OS-EXT-STS:task_state") or None,
        deleted=False,
        network_info=None,
        cache_known=False,  # the compute API shows no info cache: no VD201/VD203/VD205
    )


def to_migration(item: dict) -> Migration:
    """One ``/os-migrations`` entry as the database path's Migration."""
    return Migration(
        id=int(item.get("id") or 0),
        instance_uuid=str(item.get("instance_uuid") or ""),
        cell=CELL_NAME,
        uuid=str(item.get("uuid") or ""),
        migration_type=str(item.get("migration_type") or "migration"),
        status=item.get("status"),
        source_compute=item.get("source_compute") or "",
        dest_compute=item.get("dest_compute") or "",
        source_node=item.get("source_node") or "",
        dest_node=item.get("dest_node") or "",
        created_at=_parse_time(item.get("created_at")),
        updated_at=_parse_time(item.get("updated_at")),
    )


def _json(response: Any) -> dict:
    try:
        body = response.json()
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}
