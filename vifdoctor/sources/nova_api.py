"""Nova's compute API as a source of instances (API mode), read-only.

Same interface as :class:`vifdoctor.sources.nova_db.NovaCells` (``describe()``,
``instances()`` in uuid order, ``close()``), from ``GET /servers/detail?all_tenants``
through openstacksdk (paginated by the SDK), as an admin: host, hypervisor
hostname, vm/power/task state and name of every server.

What the API cannot show, and what that leaves unjudged:

* deleted servers are not listed: a port whose instance is deleted is reported
  as VD204 "unknown to the Nova cells read", not "soft-deleted";
* the network info cache (``instance_info_caches.network_info``): the server's
  ``addresses`` come from it but name no port, and ``/servers/{id}/os-interface``
  lists Neutron's ports (nova asks Neutron for it), not the cache. Instances
  are therefore yielded with ``cache_known=False``: the rules do not judge the
  cache codes (VD201, VD203, VD205, :data:`CACHE_CODES`) for them.

Servers are sorted by id in memory (one small record per server): API mode is
meant for clouds of moderate size; use the Nova databases for very large ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from vifdoctor.errors import VifdoctorError
from vifdoctor.model import Instance
from vifdoctor.sources.neutron_api import _quiet_sdk, api_error, scrub

#: Codes judged from Nova's network info cache, which the compute API does not show.
CACHE_CODES = frozenset({"VD201", "VD203", "VD205"})
CELL_NAME = "nova-api"
PAGE_SIZE = 1000  # nova's default [api] max_limit

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
                    "/servers/detail?all_tenants=1&limit=1", raise_exc=False)
        except Exception as exc:  # no endpoint in the catalog, discovery failed, unreachable
            raise NovaApiUnavailable(str(api_error(exc, "Nova API"))) from None
        if response.status_code in (401, 403):
            raise VifdoctorError(
                f"Nova API: HTTP {response.status_code} listing the servers of all projects "
                "(needs an admin account; --no-nova-api audits without Nova)")
        if response.status_code >= 400 or "servers" not in _json(response):
            raise NovaApiUnavailable(
                f"Nova API: {scrub(self.endpoint)} does not list servers "
                f"(HTTP {response.status_code}): not a compute endpoint")
        return self

    def describe(self) -> list[dict]:
        return [{"cell": CELL_NAME, "url": scrub(self.endpoint), "dialect": "compute-api",
                 "cloud": self.cloud or "(OS_* environment)"}]

    def close(self) -> None:
        """The connection belongs to the caller (it is shared with the Neutron source)."""

    def instances(self) -> Iterator[Instance]:
        """Every listed server in uuid order (code point order, as the merge-join needs)."""
        found: list[Instance] = []
        try:
            with _quiet_sdk():
                for server in self.connection.compute.servers(
                        details=True, all_projects=True, limit=self.page_size):
                    found.append(to_instance(server))
        except VifdoctorError:
            raise
        except Exception as exc:
            raise api_error(exc, "Nova API") from None
        self.servers_read = len(found)
        found.sort(key=lambda inst: inst.uuid)
        yield from found


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
        power_state=int(power) if isinstance(power, (int, str)) and str(power).isdigit()
        else None,
        task_state=get("task_state", "OS-EXT-STS:task_state") or None,
        deleted=False,
        network_info=None,
        cache_known=False,  # the compute API shows no info cache: no VD201/VD203/VD205
    )


def _json(response: Any) -> dict:
    try:
        body = response.json()
    except Exception:
        return {}
    return body if isinstance(body, dict) else {}
